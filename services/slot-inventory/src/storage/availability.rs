//! Reading availability for the stream: the free slots of centres, and
//! the feed of centres whose slots changed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use creneau_kit::db::changes::ChangeFeed;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::slot;
use super::places::OPEN;
use crate::domain::availability::FreeSlot;

/// Filled by triggers on `slots` (see the migrations).
pub const CHANGES: ChangeFeed = ChangeFeed { table: "availability_changes", key: "centre_id" };

/// Centres with a slot starting in `(now, until)`, whatever its places.
pub async fn centres(db: &DatabaseConnection, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<String>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        centre_id: String,
    }
    let rows = slot::Entity::find()
        .select_only()
        .column(slot::Column::CentreId)
        .distinct()
        .filter(slot::Column::StartsAt.gt(now))
        .filter(slot::Column::StartsAt.lt(until))
        .order_by_asc(slot::Column::CentreId)
        .into_model::<Row>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.centre_id).collect())
}

#[derive(FromQueryResult)]
struct FreeRow {
    centre_id: String,
    vaccine: String,
    starts_at: DateTime<Utc>,
    left: i32,
}

/// Open slots with room of `centre_ids`, starting in `(now, until)`.
pub async fn free_slots(
    db: &DatabaseConnection,
    centre_ids: &[String],
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<HashMap<String, Vec<FreeSlot>>, DbErr> {
    let rows = slot::Entity::find()
        .select_only()
        .column(slot::Column::CentreId)
        .column(slot::Column::Vaccine)
        .column(slot::Column::StartsAt)
        .column_as(Expr::col(slot::Column::Capacity).sub(Expr::col(slot::Column::Booked)), "left")
        .filter(slot::Column::CentreId.is_in(centre_ids.iter().cloned()))
        .filter(slot::Column::Status.eq(OPEN))
        .filter(slot::Column::StartsAt.gt(now))
        .filter(slot::Column::StartsAt.lt(until))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .into_model::<FreeRow>()
        .all(db)
        .await?;
    let mut by_centre: HashMap<String, Vec<FreeSlot>> = HashMap::new();
    for row in rows {
        by_centre.entry(row.centre_id).or_default().push(FreeSlot {
            vaccine: row.vaccine,
            starts_at: row.starts_at,
            places_left: u32::try_from(row.left).unwrap_or(0),
        });
    }
    Ok(by_centre)
}
