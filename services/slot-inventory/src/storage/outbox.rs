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
use creneau_kit::db::queue::Queue;

pub async fn enqueue(txn: &impl ConnectionTrait, kind: events::event::Kind, now: DateTime<Utc>) -> Result<(), DbErr> {
    let event_id = uuid::Uuid::now_v7().to_string();
    let name = kind.name();
    let aggregate = kind.reference().to_owned();
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
        aggregate: Set(Some(aggregate)),
        ..Default::default()
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The outbox as a queue: rows still to publish, acknowledged one by one.
pub const QUEUE: Queue = Queue {
    table: "outbox",
    pending: "published_at IS NULL",
    kind_column: "kind",
    created_column: "occurred_at",
    numeric_ids: true,
    in_order_of: Some("aggregate"),
};

/// A claimed row: its event, or why it cannot be read.
pub struct Claimed {
    pub id: i64,
    pub event: Result<Event, String>,
}

/// Claims a batch of due events for `lease`, oldest first.
pub async fn claim(db: &DatabaseConnection, lease: Duration, limit: u32) -> Result<Vec<Claimed>, DbErr> {
    let ids = QUEUE.claim(db, lease, limit).await?;
    let ids: Vec<i64> = ids.iter().filter_map(|id| id.parse().ok()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows =
        outbox::Entity::find().filter(outbox::Column::Id.is_in(ids)).order_by_asc(outbox::Column::Id).all(db).await?;
    Ok(rows.into_iter().map(|row| Claimed { id: row.id, event: decode(&row.payload) }).collect())
}

fn decode(payload: &str) -> Result<Event, String> {
    let bytes = STANDARD.decode(payload).map_err(|e| format!("the payload is not base64: {e}"))?;
    Event::decode(bytes.as_slice()).map_err(|e| format!("the payload does not decode: {e}"))
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
