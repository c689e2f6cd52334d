//! Publishing and listing slots, and availability per centre.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::entities::slot;
use super::places::{self, OPEN};
use crate::domain::{NewSlot, Places, SlotWindow};

/// A slot with its live holds counted.
#[derive(Debug, Clone)]
pub struct SlotView {
    pub slot: slot::Model,
    pub held: i64,
}

pub async fn list_slots(
    db: &DatabaseConnection,
    centre_id: &str,
    window: SlotWindow,
    available_only: bool,
    now: DateTime<Utc>,
) -> Result<Vec<SlotView>, DbErr> {
    let mut query = slot::Entity::find()
        .filter(slot::Column::CentreId.eq(centre_id))
        .filter(slot::Column::StartsAt.gte(std::cmp::max(window.start, now)))
        .filter(slot::Column::StartsAt.lt(window.end));
    if available_only {
        query = query
            .filter(slot::Column::Status.eq(OPEN))
            .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)));
    }
    let slots = query.order_by_asc(slot::Column::StartsAt).limit(2000).all(db).await?;
    let ids: Vec<String> = slots.iter().map(|s| s.id.clone()).collect();
    let held = places::live_holds(db, &ids, now).await?;
    Ok(slots
        .into_iter()
        .map(|slot| {
            let held = held.get(&slot.id).copied().unwrap_or(0);
            SlotView { slot, held }
        })
        .filter(|v| !available_only || Places::new(v.slot.capacity, v.slot.booked, v.held).has_room())
        .collect())
}

#[derive(Debug, FromQueryResult)]
pub struct Availability {
    pub centre_id: String,
    pub next_slot: Option<DateTime<Utc>>,
    pub available: Option<i64>,
}

/// Per centre: the earliest open slot with room, and how many places are
/// left (holds are short-lived and not subtracted here).
pub async fn availability(
    db: &DatabaseConnection,
    centre_ids: &[String],
    window: SlotWindow,
    vaccines: Option<&[String]>,
    day_parts: Option<&[(DateTime<Utc>, DateTime<Utc>)]>,
) -> Result<Vec<Availability>, DbErr> {
    let mut query = slot::Entity::find()
        .select_only()
        .column(slot::Column::CentreId)
        .column_as(slot::Column::StartsAt.min(), "next_slot")
        .column_as(Expr::col(slot::Column::Capacity).sub(Expr::col(slot::Column::Booked)).sum(), "available")
        .filter(slot::Column::CentreId.is_in(centre_ids.iter().cloned()))
        .filter(slot::Column::Status.eq(OPEN))
        .filter(slot::Column::StartsAt.gte(window.start))
        .filter(slot::Column::StartsAt.lt(window.end))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .group_by(slot::Column::CentreId);
    if let Some(vaccines) = vaccines {
        query = query.filter(slot::Column::Vaccine.is_in(vaccines.iter().cloned()));
    }
    if let Some(parts) = day_parts {
        let any = parts.iter().fold(sea_orm::Condition::any(), |any, (from, to)| {
            any.add(
                sea_orm::Condition::all().add(slot::Column::StartsAt.gte(*from)).add(slot::Column::StartsAt.lt(*to)),
            )
        });
        query = query.filter(any);
    }
    query.into_model::<Availability>().all(db).await
}

/// Bind parameters per insert stay well under SQLite's and PostgreSQL's limits.
const INSERT_CHUNK: usize = 500;

/// Publishes slots; a slot that already exists (same centre, vaccine and
/// start) is left as it is, so publishing twice creates nothing new.
/// Returns how many were created.
pub(super) async fn insert_slots(
    txn: &impl ConnectionTrait,
    centre_id: &str,
    slots: &[NewSlot],
    schedule_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut created = 0;
    for chunk in slots.chunks(INSERT_CHUNK) {
        let rows = chunk.iter().map(|s| slot::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            centre_id: Set(centre_id.to_owned()),
            vaccine: Set(s.vaccine.code().to_owned()),
            starts_at: Set(s.starts_at),
            ends_at: Set(s.ends_at),
            capacity: Set(s.capacity as i32),
            booked: Set(0),
            created_at: Set(now),
            status: Set(OPEN.to_owned()),
            schedule_id: Set(schedule_id.map(str::to_owned)),
        });
        created += slot::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([slot::Column::CentreId, slot::Column::Vaccine, slot::Column::StartsAt])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(created)
}

pub async fn create_slots(
    db: &DatabaseConnection,
    centre_id: &str,
    slots: &[NewSlot],
    now: DateTime<Utc>,
) -> Result<Vec<slot::Model>, DbErr> {
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    let txn = db.begin().await?;
    insert_slots(&txn, centre_id, slots, None, now).await?;
    let first = slots.iter().map(|s| s.starts_at).min().expect("not empty");
    let last = slots.iter().map(|s| s.starts_at).max().expect("not empty");
    let stored = slot::Entity::find()
        .filter(slot::Column::CentreId.eq(centre_id))
        .filter(slot::Column::StartsAt.between(first, last))
        .order_by_asc(slot::Column::StartsAt)
        .all(&txn)
        .await?;
    txn.commit().await?;
    let wanted: HashMap<(DateTime<Utc>, &str), ()> =
        slots.iter().map(|s| ((s.starts_at, s.vaccine.code()), ())).collect();
    Ok(stored.into_iter().filter(|row| wanted.contains_key(&(row.starts_at, row.vaccine.as_str()))).collect())
}
