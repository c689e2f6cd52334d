//! The transactional outbox: events are written in the same transaction as
//! the state change they describe, then relayed. Nothing committed is lost;
//! relaying is at least once and the receiver deduplicates by event id.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use creneau_proto::notification::v1::{self as events, Event};
use prost::Message;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use super::entities::outbox;

pub async fn enqueue(txn: &impl ConnectionTrait, kind: events::event::Kind, now: DateTime<Utc>) -> Result<(), DbErr> {
    let event_id = uuid::Uuid::now_v7().to_string();
    let name = kind.name();
    let event = Event {
        id: event_id.clone(),
        occurred_at: now.to_rfc3339(),
        traceparent: creneau_kit::telemetry::current_traceparent().unwrap_or_default(),
        kind: Some(kind),
    };
    outbox::Entity::insert(outbox::ActiveModel {
        event_id: Set(event_id),
        kind: Set(name.to_owned()),
        payload: Set(STANDARD.encode(event.encode_to_vec())),
        occurred_at: Set(now),
        lease_until: Set(None),
        published_at: Set(None),
        attempts: Set(0),
        ..Default::default()
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Claims a batch of unpublished events for `lease`, oldest first.
pub async fn claim(db: &DatabaseConnection, lease: Duration, limit: u32) -> Result<Vec<(i64, Event)>, DbErr> {
    let ids = creneau_kit::db::claim_batch(db, "outbox", "published_at IS NULL", lease, limit).await?;
    let ids: Vec<i64> = ids.iter().filter_map(|id| id.parse().ok()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows =
        outbox::Entity::find().filter(outbox::Column::Id.is_in(ids)).order_by_asc(outbox::Column::Id).all(db).await?;
    rows.into_iter()
        .map(|row| {
            let bytes = STANDARD
                .decode(&row.payload)
                .map_err(|e| DbErr::Custom(format!("outbox row {} is not base64: {e}", row.id)))?;
            let event = Event::decode(bytes.as_slice())
                .map_err(|e| DbErr::Custom(format!("outbox row {} does not decode: {e}", row.id)))?;
            Ok((row.id, event))
        })
        .collect()
}

pub async fn mark_published(db: &DatabaseConnection, ids: &[i64], now: DateTime<Utc>) -> Result<(), DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::PublishedAt, Expr::value(now))
        .col_expr(outbox::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(outbox::Column::Id.is_in(ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives a claimed batch back at once after a failed delivery, so the next
/// attempt does not wait for the lease to run out.
pub async fn release(db: &DatabaseConnection, ids: &[i64]) -> Result<(), DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(outbox::Column::Id.is_in(ids.iter().copied()))
        .filter(outbox::Column::PublishedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
