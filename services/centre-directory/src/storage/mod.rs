//! Storage of the centre-directory service: writes, and the reads that
//! load the in-memory directory (searches never query the database).

pub mod entities;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use creneau_kit::db::changes::ChangeFeed;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use crate::domain::{Gazetteer, NewCentre, Point};
use entities::{centre, centre_vaccine, postcode};

pub async fn upsert_centre(db: &DatabaseConnection, c: &NewCentre, now: DateTime<Utc>) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    save(&txn, c, now).await?;
    txn.commit().await
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
    row.name.as_str() == &*c.name
        && row.address.as_str() == &*c.address
        && row.postcode.as_str() == &*c.postcode
        && row.city.as_str() == &*c.city
        && row.department.as_str() == &*c.department
        && row.lat == c.location.lat
        && row.lon == c.location.lon
        && row.accessible == c.accessible
        && row.phone.as_str() == &*c.phone
        && row.publish_at == c.publish_at
        && row.closes_at == c.closes_at
        && row.insee.as_deref() == c.insee.as_deref()
        && vaccines == wanted
}

/// Writes one centre and its vaccines inside `txn`.
async fn save(txn: &impl ConnectionTrait, c: &NewCentre, now: DateTime<Utc>) -> Result<(), DbErr> {
    let row = centre::ActiveModel {
        id: Set(c.id.as_str().to_owned()),
        name: Set(c.name.to_string()),
        address: Set(c.address.to_string()),
        postcode: Set(c.postcode.to_string()),
        city: Set(c.city.to_string()),
        department: Set(c.department.to_string()),
        lat: Set(c.location.lat),
        lon: Set(c.location.lon),
        accessible: Set(c.accessible),
        phone: Set(c.phone.to_string()),
        publish_at: Set(c.publish_at),
        created_at: Set(now),
        updated_at: Set(now),
        insee: Set(c.insee.as_deref().map(str::to_owned)),
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

/// Filled by triggers on `centres` (see the migrations).
pub const CHANGES: ChangeFeed = ChangeFeed { table: "directory_changes", key: "id" };

/// A stored centre as the domain knows it; a row the domain would refuse
/// (written by hand) is left out with a warning rather than served.
fn to_domain(row: centre::Model, vaccines: &[String]) -> Option<NewCentre> {
    let parsed = NewCentre::parse(
        &row.id,
        &row.name,
        &row.address,
        &row.postcode,
        &row.city,
        &row.department,
        row.lat,
        row.lon,
        vaccines,
        row.accessible,
        &row.phone,
        &row.publish_at.to_rfc3339(),
    );
    match parsed {
        Ok(mut centre) => {
            centre.publish_at = row.publish_at;
            centre.insee = row.insee.map(String::into_boxed_str);
            centre.closes_at = row.closes_at;
            Some(centre)
        }
        Err(error) => {
            tracing::warn!(centre_id = %row.id, %error, "a stored centre is invalid; not served");
            None
        }
    }
}

async fn with_vaccines(
    db: &DatabaseConnection,
    centres: Vec<centre::Model>,
    all: bool,
) -> Result<Vec<NewCentre>, DbErr> {
    if centres.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = centre_vaccine::Entity::find();
    if !all {
        query = query.filter(centre_vaccine::Column::CentreId.is_in(centres.iter().map(|c| c.id.clone())));
    }
    let mut by_centre: HashMap<String, Vec<String>> = HashMap::new();
    for row in query.all(db).await? {
        by_centre.entry(row.centre_id).or_default().push(row.vaccine);
    }
    Ok(centres
        .into_iter()
        .filter_map(|row| {
            let vaccines = by_centre.remove(&row.id).unwrap_or_default();
            to_domain(row, &vaccines)
        })
        .collect())
}

/// Every centre, published or not.
pub async fn load_all(db: &DatabaseConnection) -> Result<Vec<NewCentre>, DbErr> {
    let centres = centre::Entity::find().all(db).await?;
    with_vaccines(db, centres, true).await
}

/// The centres of `ids` that exist.
pub async fn load(db: &DatabaseConnection, ids: &[String]) -> Result<Vec<NewCentre>, DbErr> {
    let mut found = Vec::new();
    for chunk in ids.chunks(500) {
        let centres = centre::Entity::find().filter(centre::Column::Id.is_in(chunk.iter().cloned())).all(db).await?;
        found.extend(with_vaccines(db, centres, false).await?);
    }
    Ok(found)
}

/// Where postcodes and communes are: a postcode at its first commune, a
/// commune name at its first postcode.
pub async fn gazetteer(db: &DatabaseConnection) -> Result<Gazetteer, DbErr> {
    let rows = postcode::Entity::find()
        .order_by_asc(postcode::Column::Postcode)
        .order_by_asc(postcode::Column::Insee)
        .all(db)
        .await?;
    Ok(Gazetteer::new(
        rows.into_iter().filter_map(|r| Point::new(r.lat, r.lon).map(|p| (r.postcode, r.insee, r.city, p))),
    ))
}
