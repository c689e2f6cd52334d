//! Queries of the centre-directory service. Publication is a timestamp
//! compared with the clock in every query, so a centre appears exactly at
//! its publication time without any job having to run.

pub mod entities;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
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
    save(&txn, c, now).await?;
    let stored = centre::Entity::find_by_id(c.id.as_str().to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(c.id.as_str().to_owned()))?;
    txn.commit().await?;
    Ok(CentreRecord { centre: stored, vaccines: c.vaccines.iter().map(|v| v.code().to_owned()).collect() })
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
}

/// Upserts every centre in one transaction: all of them or none. A centre
/// identical to the stored one is not written, so importing the same file
/// again changes nothing.
pub async fn import(
    db: &DatabaseConnection,
    centres: &[NewCentre],
    now: DateTime<Utc>,
) -> Result<ImportOutcome, DbErr> {
    let txn = db.begin().await?;
    let mut outcome = ImportOutcome::default();
    for c in centres {
        let stored = centre::Entity::find_by_id(c.id.as_str().to_owned()).one(&txn).await?;
        match stored {
            None => outcome.created += 1,
            Some(row) => {
                let vaccines: Vec<String> = centre_vaccine::Entity::find()
                    .filter(centre_vaccine::Column::CentreId.eq(c.id.as_str()))
                    .order_by_asc(centre_vaccine::Column::Vaccine)
                    .all(&txn)
                    .await?
                    .into_iter()
                    .map(|v| v.vaccine)
                    .collect();
                if same(&row, &vaccines, c) {
                    outcome.unchanged += 1;
                    continue;
                }
                outcome.updated += 1;
            }
        }
        save(&txn, c, now).await?;
    }
    txn.commit().await?;
    Ok(outcome)
}

fn same(row: &centre::Model, vaccines: &[String], c: &NewCentre) -> bool {
    let mut wanted: Vec<String> = c.vaccines.iter().map(|v| v.code().to_owned()).collect();
    wanted.sort();
    row.name == c.name
        && row.address == c.address
        && row.postcode == c.postcode
        && row.city == c.city
        && row.department == c.department
        && row.lat == c.location.lat
        && row.lon == c.location.lon
        && row.accessible == c.accessible
        && row.phone == c.phone
        && row.publish_at == c.publish_at
        && row.closes_at == c.closes_at
        && row.insee == c.insee
        && vaccines == wanted
}

/// Writes one centre and its vaccines inside `txn`.
async fn save(txn: &impl ConnectionTrait, c: &NewCentre, now: DateTime<Utc>) -> Result<(), DbErr> {
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
        insee: Set(c.insee.clone()),
        closes_at: Set(c.closes_at),
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
                    centre::Column::Insee,
                    centre::Column::ClosesAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    centre_vaccine::Entity::delete_many().filter(centre_vaccine::Column::CentreId.eq(c.id.as_str())).exec(txn).await?;
    centre_vaccine::Entity::insert_many(c.vaccines.iter().map(|v| centre_vaccine::ActiveModel {
        centre_id: Set(c.id.as_str().to_owned()),
        vaccine: Set(v.code().to_owned()),
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// What ranking a search needs of a centre. A search ranks thousands of
/// centres but shows a page: only the page is then loaded in full.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Candidate {
    pub id: String,
    pub lat: f64,
    pub lon: f64,
    pub accessible: bool,
}

fn candidates() -> sea_orm::Select<centre::Entity> {
    centre::Entity::find()
        .select_only()
        .column(centre::Column::Id)
        .column(centre::Column::Lat)
        .column(centre::Column::Lon)
        .column(centre::Column::Accessible)
}

/// The page's centres in full, in the order of `ids`.
pub async fn load_page(db: &DatabaseConnection, ids: &[String]) -> Result<Vec<CentreRecord>, DbErr> {
    let rows = centre::Entity::find().filter(centre::Column::Id.is_in(ids.iter().cloned())).all(db).await?;
    let mut by_id: HashMap<String, centre::Model> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
    with_vaccines(db, ids.iter().filter_map(|id| by_id.remove(id)).collect()).await
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

fn offers(vaccine: &str) -> sea_orm::sea_query::SimpleExpr {
    centre::Column::Id.in_subquery(
        Query::select()
            .column(centre_vaccine::Column::CentreId)
            .from(centre_vaccine::Entity)
            .and_where(centre_vaccine::Column::Vaccine.eq(vaccine))
            .to_owned(),
    )
}

/// Visible to citizens at `now`: published, and not closed yet.
fn published(now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(centre::Column::PublishAt.lte(now))
        .add(sea_orm::Condition::any().add(centre::Column::ClosesAt.is_null()).add(centre::Column::ClosesAt.gt(now)))
}

/// The centre, if it is published at `now`.
pub async fn find_published(
    db: &DatabaseConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<CentreRecord>, DbErr> {
    let found = centre::Entity::find_by_id(id.to_owned()).filter(published(now)).one(db).await?;
    Ok(with_vaccines(db, found.into_iter().collect()).await?.pop())
}

/// Published centres inside the box that offer `vaccine` (if given).
pub async fn published_in_box(
    db: &DatabaseConnection,
    area: BoundingBox,
    vaccine: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Candidate>, DbErr> {
    let mut query = candidates()
        .filter(centre::Column::Lat.between(area.min_lat, area.max_lat))
        .filter(centre::Column::Lon.between(area.min_lon, area.max_lon))
        .filter(published(now));
    if let Some(vaccine) = vaccine {
        query = query.filter(offers(vaccine));
    }
    query.into_model::<Candidate>().all(db).await
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

/// Where a commune is, by INSEE code or by name (any case).
pub async fn locate_commune(db: &DatabaseConnection, commune: &str) -> Result<Option<Point>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    // INSEE codes: five digits, or 2A/2B and three digits in Corsica.
    let by_code = commune.len() == 5
        && commune.is_ascii()
        && (commune[..2].bytes().all(|b| b.is_ascii_digit())
            || ["2A", "2B"].contains(&&commune[..2].to_uppercase()[..]))
        && commune[2..].bytes().all(|b| b.is_ascii_digit());
    let query = if by_code {
        postcode::Entity::find().filter(postcode::Column::Insee.eq(commune.to_uppercase()))
    } else {
        postcode::Entity::find()
            .filter(Expr::expr(Func::lower(Expr::col(postcode::Column::City))).eq(commune.to_lowercase()))
    };
    let row = query.order_by_asc(postcode::Column::Postcode).one(db).await?;
    Ok(row.and_then(|r| Point::new(r.lat, r.lon)))
}

/// Published centres of a department that offer `vaccine` (if given).
pub async fn published_in_department(
    db: &DatabaseConnection,
    department: &str,
    vaccine: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Candidate>, DbErr> {
    let mut query =
        candidates().filter(centre::Column::Department.eq(department.to_uppercase())).filter(published(now));
    if let Some(vaccine) = vaccine {
        query = query.filter(offers(vaccine));
    }
    query.order_by_asc(centre::Column::Name).limit(MAX_CANDIDATES).into_model::<Candidate>().all(db).await
}

/// At most this many centres are ranked per search: slot-inventory
/// answers availability for up to 500 centres a call.
pub const MAX_CANDIDATES: u64 = 500;

/// Published centres in id order after `after`, at most `limit`.
pub async fn published_page(
    db: &DatabaseConnection,
    after: &str,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Vec<CentreRecord>, DbErr> {
    let centres = centre::Entity::find()
        .filter(published(now))
        .filter(centre::Column::Id.gt(after))
        .order_by_asc(centre::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    with_vaccines(db, centres).await
}
