//! Holds: one place set aside for a few minutes while a citizen fills in
//! the form. A hold counts against capacity only while it lives, so an
//! expired hold gives its place back by itself, with no sweeper.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::entities::hold;
use super::{is_unique_violation, places, retrying};
use crate::domain::{BookingError, HoldState, Places};

#[derive(Debug, Clone)]
pub struct HoldView {
    pub id: String,
    pub slot_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Holds one place of `slot_id` for `holder_key`, replacing any live hold
/// the holder had: one live hold per holder, so nobody can sit on several
/// places.
pub async fn hold(
    db: &DatabaseConnection,
    slot_id: &str,
    holder_key: &str,
    ttl: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<HoldView, BookingError> {
    let result = retrying(|| async {
        let txn = creneau_kit::db::begin(db).await?;
        // Expired or replaced holds leave the "live" state: the index that
        // keeps one live hold per holder only sees the new one.
        hold::Entity::update_many()
            .col_expr(hold::Column::State, Expr::value(HoldState::Expired.as_str()))
            .filter(hold::Column::HolderKey.eq(holder_key))
            .filter(hold::Column::State.eq(HoldState::Live.as_str()))
            .filter(hold::Column::ExpiresAt.lte(now))
            .exec(&txn)
            .await?;
        hold::Entity::update_many()
            .col_expr(hold::Column::State, Expr::value(HoldState::Released.as_str()))
            .filter(hold::Column::HolderKey.eq(holder_key))
            .filter(hold::Column::State.eq(HoldState::Live.as_str()))
            .exec(&txn)
            .await?;
        let slot = places::lock_slot(&txn, slot_id).await?.ok_or_else(|| BookingError::SlotNotFound(slot_id.into()))?;
        if slot.starts_at <= now {
            return Err(BookingError::SlotStarted);
        }
        if slot.status == places::CLOSED {
            return Err(BookingError::SlotClosed);
        }
        let held = places::live_holds(&txn, std::slice::from_ref(&slot.id), now).await?;
        if !Places::new(slot.capacity, slot.booked, held.get(&slot.id).copied().unwrap_or(0)).has_room() {
            return Err(BookingError::SlotFull);
        }
        let view = HoldView { id: uuid::Uuid::now_v7().to_string(), slot_id: slot.id.clone(), expires_at: now + ttl };
        hold::Entity::insert(hold::ActiveModel {
            id: Set(view.id.clone()),
            slot_id: Set(view.slot_id.clone()),
            holder_key: Set(holder_key.to_owned()),
            state: Set(HoldState::Live.as_str().into()),
            expires_at: Set(view.expires_at),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(view)
    })
    .await;
    match result {
        Err(BookingError::Storage(err)) if is_unique_violation(&err, "holder") => Err(BookingError::HoldConflict),
        other => other,
    }
}

/// Gives a held place back. Releasing twice is not an error; someone
/// else's hold looks like no hold.
pub async fn release_hold(db: &DatabaseConnection, hold_id: &str, holder_key: &str) -> Result<(), BookingError> {
    let found = hold::Entity::find_by_id(hold_id.to_owned())
        .filter(hold::Column::HolderKey.eq(holder_key))
        .one(db)
        .await?
        .ok_or(BookingError::HoldNotFound)?;
    hold::Entity::update_many()
        .col_expr(hold::Column::State, Expr::value(HoldState::Released.as_str()))
        .filter(hold::Column::Id.eq(found.id))
        .filter(hold::Column::State.eq(HoldState::Live.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
