//! Received events and the messages made from them. The event id's primary
//! key turns at-least-once relaying into exactly-once messages.

pub mod entities;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::domain::Rendered;
use creneau_kit::db::queue::Queue;
use entities::{message, received_event};

pub async fn is_known(db: &DatabaseConnection, event_id: &str) -> Result<bool, DbErr> {
    Ok(received_event::Entity::find_by_id(event_id.to_owned()).one(db).await?.is_some())
}

/// Records the event and its message in one transaction; false when the
/// event was already recorded (a redelivery), in which case nothing changes.
pub async fn accept(
    db: &DatabaseConnection,
    event_id: &str,
    kind: &str,
    message: Option<&Rendered>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let inserted = received_event::Entity::insert(received_event::ActiveModel {
        event_id: Set(event_id.to_owned()),
        kind: Set(kind.to_owned()),
        received_at: Set(now),
    })
    .on_conflict(OnConflict::column(received_event::Column::EventId).do_nothing().to_owned())
    .exec_without_returning(&txn)
    .await?;
    if inserted == 0 {
        return Ok(false);
    }
    if let Some(m) = message {
        message::Entity::insert(message::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            event_id: Set(event_id.to_owned()),
            channel: Set(m.channel.as_str().to_owned()),
            recipient: Set(m.recipient.clone()),
            subject: Set(m.subject.clone()),
            body: Set(m.body.clone()),
            language: Set(m.language.to_owned()),
            created_at: Set(now),
            sent_at: Set(None),
            lease_until: Set(None),
            attempts: Set(0),
            last_error: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(true)
}

/// Messages as a queue: those still to send, acknowledged one by one.
pub const QUEUE: Queue = Queue {
    table: "messages",
    pending: "sent_at IS NULL",
    kind_column: "channel",
    created_column: "created_at",
    numeric_ids: false,
    in_order_of: None,
};

/// Claims due unsent messages for `lease`, oldest first.
pub async fn claim_unsent(db: &DatabaseConnection, lease: Duration, limit: u32) -> Result<Vec<message::Model>, DbErr> {
    let ids = QUEUE.claim(db, lease, limit).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    message::Entity::find().filter(message::Column::Id.is_in(ids)).order_by_asc(message::Column::Id).all(db).await
}

pub async fn mark_sent(db: &DatabaseConnection, id: &str, now: DateTime<Utc>) -> Result<(), DbErr> {
    message::Entity::update_many()
        .col_expr(message::Column::SentAt, Expr::value(now))
        .col_expr(message::Column::LastError, Expr::value(Option::<String>::None))
        .filter(message::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
