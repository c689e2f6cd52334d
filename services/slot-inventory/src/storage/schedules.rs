//! Staff operations: opening hours that generate slots, closing slots, and
//! cancelling or moving a whole session (a failed delivery, a closed
//! hall). Every affected citizen gets exactly one event, written in the
//! same transaction as the change.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use creneau_proto::notification::v1 as events;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::booking::{cancel_row, move_to, repair_second_dose};
use super::entities::{appointment, booking, schedule, slot};
use super::places::{self, CLOSED, OPEN, Vaccines};
use super::slots::insert_slots;
use super::{appointment_info, outbox, recipient_of, retrying, view_of};
use crate::domain::{BookingError, BookingStatus, Places, Schedule};

/// Stores the schedule (once) and the slots it generates (those missing).
/// Returns (slots created now, slots the schedule has in all).
pub async fn create_schedule(db: &DatabaseConnection, s: &Schedule, now: DateTime<Utc>) -> Result<(u64, usize), DbErr> {
    let slots = s.slots();
    let txn = db.begin().await?;
    let weekdays = s.weekdays.iter().fold(0i32, |mask, d| mask | (1 << (d - 1)));
    schedule::Entity::insert(schedule::ActiveModel {
        id: Set(s.id()),
        centre_id: Set(s.centre_id.clone()),
        vaccine: Set(s.vaccine.code().to_owned()),
        start_date: Set(s.start),
        end_date: Set(s.end),
        weekdays: Set(weekdays),
        opens: Set(s.opens.format("%H:%M").to_string()),
        closes: Set(s.closes.format("%H:%M").to_string()),
        slot_minutes: Set(s.slot_minutes as i32),
        lines: Set(s.lines as i32),
        time_zone: Set(s.zone.name().to_owned()),
        created_at: Set(now),
    })
    .on_conflict(OnConflict::column(schedule::Column::Id).do_nothing().to_owned())
    .exec_without_returning(&txn)
    .await?;
    let id = s.id();
    let created = insert_slots(&txn, &s.centre_id, &slots, Some(&id), now).await?;
    txn.commit().await?;
    Ok((created, slots.len()))
}

/// Stops selling these slots; appointments already in them stay.
pub async fn close_slots(db: &DatabaseConnection, ids: &[String]) -> Result<u64, DbErr> {
    let result = slot::Entity::update_many()
        .col_expr(slot::Column::Status, Expr::value(CLOSED))
        .filter(slot::Column::Id.is_in(ids.iter().cloned()))
        .filter(slot::Column::Status.eq(OPEN))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

#[derive(Debug, Clone)]
pub enum SessionAction {
    Cancel,
    /// Move to the same local time on this date, or the nearest free slot.
    MoveTo(NaiveDate),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionOutcome {
    pub cancelled: u32,
    pub moved: u32,
    pub slots_closed: u32,
}

/// Cancels or moves every confirmed appointment of a centre in
/// `[start, end)`, and closes those slots. Running it again changes
/// nothing: the slots are closed and no appointment is left in them.
#[allow(clippy::too_many_arguments)]
pub async fn cancel_session(
    db: &DatabaseConnection,
    vaccines: &Vaccines,
    centre_id: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    zone: Tz,
    action: &SessionAction,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<SessionOutcome, BookingError> {
    retrying(|| async {
        let txn = creneau_kit::db::begin(db).await?;
        let mut outcome = SessionOutcome::default();
        // The bookings first, in one order, as every change to a booking
        // does (`lock_authorised`): a citizen cancelling or moving one of
        // them now waits for the session, or the session for them.
        let mut locked = BTreeMap::new();
        lock_bookings(&txn, session_bookings(&txn, centre_id, (start, end)).await?, &mut locked).await?;
        let closed = slot::Entity::update_many()
            .col_expr(slot::Column::Status, Expr::value(CLOSED))
            .filter(slot::Column::CentreId.eq(centre_id))
            .filter(slot::Column::StartsAt.gte(start))
            .filter(slot::Column::StartsAt.lt(end))
            .filter(slot::Column::Status.eq(OPEN))
            .exec(&txn)
            .await?;
        outcome.slots_closed = closed.rows_affected as u32;

        // Read again now that the slots are closed: every appointment as
        // it stands after the changes that committed while we waited. A
        // booking made between the first read and the close is not locked
        // yet, and locking it now, after the slots, could deadlock with a
        // citizen changing it (booking first, then slots): start again, and
        // the first read sees it.
        let affected = session_appointments(&txn, centre_id, (start, end)).await?;
        let mut by_booking: BTreeMap<String, Vec<appointment::Model>> = BTreeMap::new();
        for a in affected {
            by_booking.entry(a.booking_id.clone()).or_default().push(a);
        }
        if by_booking.keys().any(|id| !locked.contains_key(id)) {
            return Err(BookingError::Contended);
        }
        for (booking_id, appointments) in by_booking {
            let Some(row) = locked.get(&booking_id).filter(|b| b.status == BookingStatus::Confirmed.as_str()) else {
                continue;
            };
            let moved = match action {
                SessionAction::Cancel => false,
                SessionAction::MoveTo(date) => {
                    move_booking(&txn, vaccines, row, &appointments, *date, zone, reason, now).await?
                }
            };
            if moved {
                outcome.moved += 1;
            } else if cancel_row(&txn, row, reason, now).await? {
                outcome.cancelled += 1;
            }
        }
        txn.commit().await?;
        Ok(outcome)
    })
    .await
}

async fn session_appointments(
    txn: &impl ConnectionTrait,
    centre_id: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<appointment::Model>, DbErr> {
    appointment::Entity::find()
        .filter(appointment::Column::CentreId.eq(centre_id))
        .filter(appointment::Column::StartsAt.gte(start))
        .filter(appointment::Column::StartsAt.lt(end))
        .order_by_asc(appointment::Column::StartsAt)
        .order_by_asc(appointment::Column::BookingId)
        .all(txn)
        .await
}

async fn session_bookings(
    txn: &impl ConnectionTrait,
    centre_id: &str,
    session: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<String>, DbErr> {
    Ok(session_appointments(txn, centre_id, session).await?.into_iter().map(|a| a.booking_id).collect())
}

/// Locks the bookings in id order, and keeps their rows as read under the
/// lock.
async fn lock_bookings(
    txn: &impl ConnectionTrait,
    mut ids: Vec<String>,
    locked: &mut BTreeMap<String, booking::Model>,
) -> Result<(), DbErr> {
    ids.sort();
    ids.dedup();
    for chunk in ids.chunks(500) {
        let rows = booking::Entity::find()
            .filter(booking::Column::Id.is_in(chunk.iter().cloned()))
            .order_by_asc(booking::Column::Id)
            .lock_exclusive()
            .all(txn)
            .await?;
        locked.extend(rows.into_iter().map(|row| (row.id.clone(), row)));
    }
    Ok(())
}

/// Moves the session's appointments of one booking to `date`. False (and
/// nothing changed) when they cannot all be placed: the caller cancels.
#[allow(clippy::too_many_arguments)]
async fn move_booking(
    txn: &impl ConnectionTrait,
    vaccines: &Vaccines,
    row: &booking::Model,
    session: &[appointment::Model],
    date: NaiveDate,
    zone: Tz,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, BookingError> {
    let before = view_of(txn, row.clone()).await?.appointments;
    for current in session {
        let Some(target) = nearest_free(txn, current, date, zone, now).await? else {
            return Ok(false);
        };
        match move_to(txn, current, &target, now).await {
            Ok(()) => {}
            Err(BookingError::SlotFull | BookingError::SlotClosed) => return Ok(false),
            Err(other) => return Err(other),
        }
        if current.dose == 1
            && let Some(second) = before.iter().find(|a| a.dose == 2)
        {
            let rules = vaccines.get(&current.vaccine).expect("a slot's vaccine is in the catalogue");
            match repair_second_dose(txn, rules, &target, second, None, now).await {
                Ok(()) => {}
                Err(BookingError::NoSecondDoseSlot(..) | BookingError::SecondSlotFull) => return Ok(false),
                Err(other) => return Err(other),
            }
        }
    }
    let after = view_of(txn, row.clone()).await?.appointments;
    let event = events::event::Kind::BookingMoved(events::BookingMoved {
        reference: row.reference.clone(),
        recipient: Some(recipient_of(row)),
        previous: before.iter().map(appointment_info).collect(),
        appointments: after.iter().map(appointment_info).collect(),
        reason: Some(reason.to_owned()),
    });
    outbox::enqueue(txn, event, now).await?;
    Ok(true)
}

/// The open slot of the same centre and vaccine on `date` closest to the
/// appointment's local time of day, with a place left; its row locked.
async fn nearest_free(
    txn: &impl ConnectionTrait,
    current: &appointment::Model,
    date: NaiveDate,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Option<slot::Model>, DbErr> {
    let local = current.starts_at.with_timezone(&zone);
    let Some(wanted) = zone.from_local_datetime(&date.and_time(local.time())).earliest() else {
        return Ok(None);
    };
    let day_start = zone.from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight")).earliest();
    let day_end = zone
        .from_local_datetime(&date.succ_opt().expect("a next day").and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest();
    let (Some(day_start), Some(day_end)) = (day_start, day_end) else {
        return Ok(None);
    };
    let mut options = places::candidates(
        txn,
        &current.centre_id,
        &current.vaccine,
        crate::domain::Window { from: day_start.with_timezone(&Utc), until: day_end.with_timezone(&Utc) },
        500,
    )
    .await?;
    let wanted = wanted.with_timezone(&Utc);
    options.sort_by_key(|s| ((s.starts_at - wanted).num_seconds().abs(), s.starts_at));
    // A booking moved only in part is cancelled whole by the caller, which
    // frees its places wherever they are by then.
    for option in options.into_iter().filter(|s| s.starts_at > now) {
        let Some(locked) = places::lock_slot(txn, &option.id).await? else { continue };
        let held = places::live_holds(txn, std::slice::from_ref(&locked.id), now).await?;
        if locked.status == OPEN
            && Places::new(locked.capacity, locked.booked, held.get(&locked.id).copied().unwrap_or(0)).has_room()
        {
            return Ok(Some(locked));
        }
    }
    Ok(None)
}
