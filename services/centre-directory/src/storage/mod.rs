//! Queries of the centre-directory service. Publication is a timestamp
//! compared with the clock in every query, so a centre appears exactly at
//! its publication time without any job having to run.

pub mod entities;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::domain::{BoundingBox, NewCentre, Point};
use entities::{centre, centre_vaccine, postcode};

/// A centre with the vaccines it offers.
#[derive(Debug, Clone)]
pub struct CentreRecord {
    pub centre: centre::Model,
    pub vaccines: Vec<String>,
}

pub async fn upsert_centre(db: &DatabaseConnection, c: &NewCentre, now: DateTime<Utc>) -> Result<CentreRecord, DbErr> {
    let txn = db.begin().await?;
    let row = centre::ActiveModel {
        id: Set(c.id.as_str().to_owned()),
        name: Set(c.name.clone()),
        address: Set(c.address.clone()),
        postcode: Set(c.postcode.clone()),
        city: Set(c.city.clone()),
        department: Set(c.department.clone()),
        lat: Set(c.location.lat),
        lon: Set(c.location.lon),
        accessible: Set(c.accessible),
        phone: Set(c.phone.clone()),
        publish_at: Set(c.publish_at),
        created_at: Set(now),
        updated_at: Set(now),
    };
    centre::Entity::insert(row)
        .on_conflict(
            OnConflict::column(centre::Column::Id)
                .update_columns([
                    centre::Column::Name,
                    centre::Column::Address,
                    centre::Column::Postcode,
                    centre::Column::City,
                    centre::Column::Department,
                    centre::Column::Lat,
                    centre::Column::Lon,
                    centre::Column::Accessible,
                    centre::Column::Phone,
                    centre::Column::PublishAt,
                    centre::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    centre_vaccine::Entity::delete_many().filter(centre_vaccine::Column::CentreId.eq(c.id.as_str())).exec(&txn).await?;
    centre_vaccine::Entity::insert_many(c.vaccines.iter().map(|v| centre_vaccine::ActiveModel {
        centre_id: Set(c.id.as_str().to_owned()),
        vaccine: Set(v.code().to_owned()),
    }))
    .exec_without_returning(&txn)
    .await?;
    let stored = centre::Entity::find_by_id(c.id.as_str().to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(c.id.as_str().to_owned()))?;
    txn.commit().await?;
    Ok(CentreRecord { centre: stored, vaccines: c.vaccines.iter().map(|v| v.code().to_owned()).collect() })
}

async fn with_vaccines(db: &DatabaseConnection, centres: Vec<centre::Model>) -> Result<Vec<CentreRecord>, DbErr> {
    if centres.is_empty() {
        return Ok(Vec::new());
    }
    let rows = centre_vaccine::Entity::find()
        .filter(centre_vaccine::Column::CentreId.is_in(centres.iter().map(|c| c.id.clone())))
        .all(db)
        .await?;
    let mut by_centre: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows {
        by_centre.entry(row.centre_id).or_default().push(row.vaccine);
    }
    Ok(centres
        .into_iter()
        .map(|centre| {
            let mut vaccines = by_centre.remove(&centre.id).unwrap_or_default();
            vaccines.sort();
            CentreRecord { centre, vaccines }
        })
        .collect())
}

/// The centre, if it is published at `now`.
pub async fn find_published(
    db: &DatabaseConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<CentreRecord>, DbErr> {
    let found = centre::Entity::find_by_id(id.to_owned()).filter(centre::Column::PublishAt.lte(now)).one(db).await?;
    Ok(with_vaccines(db, found.into_iter().collect()).await?.pop())
}

/// Published centres inside the box that offer `vaccine` (if given).
pub async fn published_in_box(
    db: &DatabaseConnection,
    area: BoundingBox,
    vaccine: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<CentreRecord>, DbErr> {
    let mut query = centre::Entity::find()
        .filter(centre::Column::Lat.between(area.min_lat, area.max_lat))
        .filter(centre::Column::Lon.between(area.min_lon, area.max_lon))
        .filter(centre::Column::PublishAt.lte(now));
    if let Some(vaccine) = vaccine {
        query = query.filter(
            centre::Column::Id.in_subquery(
                Query::select()
                    .column(centre_vaccine::Column::CentreId)
                    .from(centre_vaccine::Entity)
                    .and_where(centre_vaccine::Column::Vaccine.eq(vaccine))
                    .to_owned(),
            ),
        );
    }
    let centres = query.order_by_asc(centre::Column::Id).all(db).await?;
    with_vaccines(db, centres).await
}

/// Where a postcode is: the first commune it serves.
pub async fn locate_postcode(db: &DatabaseConnection, code: &str) -> Result<Option<Point>, DbErr> {
    let row = postcode::Entity::find()
        .filter(postcode::Column::Postcode.eq(code))
        .order_by_asc(postcode::Column::Insee)
        .one(db)
        .await?;
    Ok(row.and_then(|r| Point::new(r.lat, r.lon)))
}
