//! The two feeds that keep a replica's memory current: the directory's
//! own change feed (writes made through any replica), and slot-inventory's
//! availability stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use creneau_kit::client::GrpcChannel;
use creneau_kit::db::changes::Tail;
use creneau_kit::vocab::{TimeOfDay, Vaccine};
use creneau_proto::slot_inventory::v1::{
    self as pb, WatchAvailabilityRequest, availability_update::Kind, slot_inventory_client::SlotInventoryClient,
};
use sea_orm::{DatabaseConnection, DbErr};

use crate::domain::Directory;
use crate::domain::availability::{Availability, DayPart, Doses};
use crate::memory::Memory;
use crate::storage;

const DIRECTORY_POLL: Duration = Duration::from_millis(200);
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// Loads every centre, then follows the change feed until dropped.
pub async fn follow_directory(memory: Arc<Memory>, db: DatabaseConnection) {
    let mut tail = loop {
        match load_directory(&memory, &db).await {
            Ok(tail) => break tail,
            Err(error) => {
                tracing::warn!(%error, "directory: loading failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut ticks = tokio::time::interval(DIRECTORY_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = catch_up(&memory, &db, &mut tail).await {
            tracing::warn!(%error, "directory: following changes failed");
        }
    }
}

async fn load_directory(memory: &Memory, db: &DatabaseConnection) -> Result<Tail, DbErr> {
    // The position first: what commits later comes through the feed.
    let tail = Tail::start(storage::CHANGES, db).await?;
    let mut directory = Directory::new(memory.numbers());
    for centre in storage::load_all(db).await? {
        directory.upsert(centre);
    }
    directory.shrink();
    let places = storage::gazetteer(db).await?;
    tracing::info!(centres = directory.len(), "directory loaded");
    memory.replace(directory, places);
    Ok(tail)
}

async fn catch_up(memory: &Memory, db: &DatabaseConnection, tail: &mut Tail) -> Result<(), DbErr> {
    let changed: Vec<String> = tail.next(db).await?.into_iter().collect();
    if changed.is_empty() {
        return Ok(());
    }
    let found = storage::load(db, &changed).await?;
    for id in &changed {
        if !found.iter().any(|c| c.id.as_str() == id) {
            memory.remove(id);
        }
    }
    memory.upsert(found);
    Ok(())
}

/// Subscribes to the availability stream and applies it until dropped,
/// resuming after an interruption (or taking a new snapshot).
pub async fn follow_availability(memory: Arc<Memory>, client: SlotInventoryClient<GrpcChannel>) {
    let mut pause = RECONNECT_FIRST;
    let mut pending: Option<Availability> = None;
    loop {
        let position = memory.position();
        let request = WatchAvailabilityRequest { epoch: position.epoch.clone(), after: position.sequence };
        match client.clone().watch_availability(request).await {
            Ok(response) => {
                let mut updates = response.into_inner();
                loop {
                    match updates.message().await {
                        Ok(Some(update)) => {
                            pause = RECONNECT_FIRST;
                            apply(&memory, &mut pending, update);
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(%status, "availability stream interrupted");
                            break;
                        }
                    }
                }
            }
            Err(status) => tracing::warn!(%status, "availability stream unavailable"),
        }
        pending = None;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

fn as_of(update: &pb::AvailabilityUpdate) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(update.as_of_ms)
}

/// Applies one update of the stream. A snapshot is assembled aside and
/// swapped in whole, so searches never see half of one.
pub fn apply(memory: &Memory, pending: &mut Option<Availability>, update: pb::AvailabilityUpdate) {
    let kind = Kind::try_from(update.kind).unwrap_or(Kind::Unspecified);
    match kind {
        Kind::SnapshotBegin => {
            let mut fresh = Availability::new(memory.numbers());
            fresh.set_doses(doses(&update.vaccines));
            *pending = Some(fresh);
        }
        Kind::SnapshotPart => {
            if let Some(fresh) = pending.as_mut() {
                for centre in &update.centres {
                    fresh.set(&centre.centre_id, parts(centre));
                }
            }
        }
        Kind::SnapshotEnd => {
            if let Some(mut fresh) = pending.take() {
                fresh.shrink();
                let centres = fresh.centres();
                *memory.availability_mut() = fresh;
                let mut position = memory.position_mut();
                position.epoch = update.epoch.clone();
                position.sequence = update.sequence;
                position.as_of = as_of(&update);
                tracing::info!(centres, sequence = update.sequence, "availability snapshot applied");
            }
        }
        Kind::Delta => {
            {
                let mut availability = memory.availability_mut();
                if !update.vaccines.is_empty() {
                    availability.set_doses(doses(&update.vaccines));
                }
                for centre in &update.centres {
                    availability.set(&centre.centre_id, parts(centre));
                }
            }
            let mut position = memory.position_mut();
            position.sequence = update.sequence;
            position.as_of = as_of(&update);
        }
        Kind::Heartbeat => {
            let mut position = memory.position_mut();
            if position.epoch == update.epoch && position.sequence == update.sequence {
                position.as_of = as_of(&update);
            }
        }
        Kind::Unspecified => {}
    }
}

fn doses(vaccines: &[pb::VaccineDoses]) -> HashMap<Vaccine, Doses> {
    vaccines
        .iter()
        .filter_map(|v| Some((v.vaccine.parse().ok()?, Doses { second: v.second, booster: v.booster })))
        .collect()
}

fn parts(centre: &pb::CentreDays) -> Vec<DayPart> {
    centre
        .days
        .iter()
        .filter_map(|p| {
            Some(DayPart {
                day: p.day,
                vaccine: p.vaccine.parse().ok()?,
                time_of_day: match pb::TimeOfDay::try_from(p.time_of_day).ok()? {
                    pb::TimeOfDay::Morning => TimeOfDay::Morning,
                    pb::TimeOfDay::Afternoon => TimeOfDay::Afternoon,
                    pb::TimeOfDay::Evening => TimeOfDay::Evening,
                    pb::TimeOfDay::Unspecified => return None,
                },
                places_left: p.places_left,
                next_slot: p.next_slot,
            })
        })
        .collect()
}
