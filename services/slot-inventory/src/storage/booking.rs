//! Booking, looking up, cancelling and moving appointments.

use chrono::{DateTime, Utc};
use creneau_proto::notification::v1 as events;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::entities::{appointment, booking, hold, idempotency_key, slot};
use super::places::Vaccines;
use super::{
    BookCommand, BookingView, DoseRequest, Target, appointment_info, authorised, cancel_in, is_unique_violation,
    lock_authorised, outbox, places, recipient_of, retrying, view_of,
};
use crate::domain::{BookingError, BookingStatus, Citizen, HoldState, Places, Reference, Secret, VaccineRules};

const PRIMARY: &str = "primary";
const BOOSTER: &str = "booster";

/// Books: one transaction claims the idempotency key (first, so that a
/// concurrent retry waits on it and then replays), takes the places,
/// inserts the booking under the one-active-booking index, its
/// appointments and one outbox event.
pub async fn book(
    db: &DatabaseConnection,
    cmd: &BookCommand,
    vaccines: &Vaccines,
    now: DateTime<Utc>,
) -> Result<BookingView, BookingError> {
    match retrying(|| try_book(db, cmd, vaccines, now)).await {
        Err(BookingError::Storage(err)) if is_unique_violation(&err, "idempotency") => replay_if_known(db, cmd, now)
            .await?
            .ok_or_else(|| BookingError::Storage(DbErr::Custom("idempotency key vanished".into()))),
        other => other,
    }
}

/// What one read tells before any write or lock.
struct Glance {
    /// The key is already known: a retry, to replay.
    known: bool,
    /// The refusal a look at the slot gives (unknown, closed or full).
    refusal: Option<BookingError>,
}

async fn glance(db: &DatabaseConnection, cmd: &BookCommand, now: DateTime<Utc>) -> Result<Glance, BookingError> {
    let slot_id = match &cmd.target {
        Target::Slot(id) => id.as_str(),
        Target::Hold { .. } => "",
    };
    let row = db
        .query_one_raw(creneau_kit::db::statement(
            db.get_database_backend(),
            "SELECT (SELECT COUNT(*) FROM idempotency_keys k WHERE k.\"key\" = ? \
                     AND (k.expires_at IS NULL OR k.expires_at > ?)) AS known, \
                    s.booked, s.capacity, s.status \
             FROM (SELECT 1 AS one) AS one LEFT JOIN slots s ON s.id = ?",
            [cmd.idempotency_key.clone().into(), now.into(), slot_id.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("the glance returned no row".into()))?;
    let known = row.try_get::<i64>("", "known")? > 0;
    if slot_id.is_empty() {
        return Ok(Glance { known, refusal: None });
    }
    let status: Option<String> = row.try_get("", "status")?;
    let (booked, capacity): (Option<i32>, Option<i32>) = (row.try_get("", "booked")?, row.try_get("", "capacity")?);
    let refusal = match (status.as_deref(), booked, capacity) {
        (None, _, _) => Some(BookingError::SlotNotFound(slot_id.to_owned())),
        (Some(places::CLOSED), _, _) => Some(BookingError::SlotClosed),
        // Holds are not counted here: this refuses only what is surely
        // full, and the locked path decides the rest.
        (_, Some(booked), Some(capacity)) if !Places::new(capacity, booked, 0).has_room() => {
            Some(BookingError::SlotFull)
        }
        _ => None,
    };
    Ok(Glance { known, refusal })
}

async fn try_book(
    db: &DatabaseConnection,
    cmd: &BookCommand,
    vaccines: &Vaccines,
    now: DateTime<Utc>,
) -> Result<BookingView, BookingError> {
    // A retry's replay and a full slot's refusal are both answered from
    // one read, before any write or lock.
    let glance = glance(db, cmd, now).await?;
    if glance.known
        && let Some(view) = replay_if_known(db, cmd, now).await?
    {
        return Ok(view);
    }
    if let Some(refusal) = glance.refusal {
        return Err(refusal);
    }
    let txn = creneau_kit::db::begin(db).await?;
    let booking_id = uuid::Uuid::now_v7().to_string();
    let secret = Secret::generate();
    // Claims the key: inserted, or taken over if the one stored has
    // expired. A live key held by another request (committed, or pending
    // and then committed) claims nothing, and the request replays it.
    let claimed = txn
        .execute_raw(creneau_kit::db::statement(
            txn.get_database_backend(),
            "INSERT INTO idempotency_keys (\"key\", request_hash, booking_id, secret, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (\"key\") DO UPDATE SET request_hash = excluded.request_hash, booking_id = excluded.booking_id, \
             secret = excluded.secret, created_at = excluded.created_at, expires_at = excluded.expires_at \
             WHERE idempotency_keys.expires_at IS NOT NULL AND idempotency_keys.expires_at <= ?",
            [
                cmd.idempotency_key.clone().into(),
                cmd.request_hash.clone().into(),
                booking_id.clone().into(),
                secret.expose().to_owned().into(),
                now.into(),
                (now + cmd.idempotency_ttl).into(),
                now.into(),
            ],
        ))
        .await?;
    if claimed.rows_affected() == 0 {
        drop(txn);
        return replay_if_known(db, cmd, now)
            .await?
            .ok_or_else(|| BookingError::Storage(DbErr::Custom("idempotency key vanished".into())));
    }

    let first = match &cmd.target {
        Target::Slot(id) => places::lock_slot(&txn, id).await?.ok_or_else(|| BookingError::SlotNotFound(id.clone()))?,
        Target::Hold { hold_id, holder_key } => {
            let held = live_hold(&txn, hold_id, holder_key, now).await?;
            let slot = places::lock_slot(&txn, &held.slot_id).await?.ok_or(BookingError::HoldNotFound)?;
            // Under the slot's lock, where holds of this slot are decided:
            // a hold is consumed once, by one booking; once consumed it no
            // longer keeps the place it gives to this booking.
            if !consume_hold(&txn, hold_id, holder_key, now).await? {
                return Err(BookingError::HoldNotFound);
            }
            slot
        }
    };
    if first.starts_at <= now {
        return Err(BookingError::SlotStarted);
    }
    let rules = vaccines
        .get(&first.vaccine)
        .ok_or_else(|| BookingError::Invalid(format!("unknown vaccine {}", first.vaccine)))?;
    if let DoseRequest::Booster { last_dose } = cmd.dose
        && !rules.booster_allowed(last_dose, first.starts_at)
    {
        return Err(BookingError::Invalid(format!(
            "a booster of {} is given at least {} days after the last dose",
            rules.label, rules.booster_min_delay_days
        )));
    }
    if !places::take_place(&txn, &first, now).await? {
        return Err(if first.status == places::CLOSED { BookingError::SlotClosed } else { BookingError::SlotFull });
    }

    let mut taken = vec![(if cmd.dose == DoseRequest::First { 1 } else { 3 }, first.clone())];
    if cmd.dose == DoseRequest::First && rules.needs_second_dose() {
        let second = places::place_second_dose(&txn, &first, rules, cmd.second_slot_id.as_deref(), now).await??;
        taken.push((2, second));
    }

    let series = if cmd.dose == DoseRequest::First { PRIMARY } else { BOOSTER };
    let reference = insert_booking(&txn, &booking_id, &cmd.citizen, &secret, series, now).await?;
    let mut appointments = Vec::new();
    for (dose, slot) in &taken {
        let row = appointment_of(&booking_id, *dose, slot);
        appointment::Entity::insert(appointment::ActiveModel::from(row.clone())).exec_without_returning(&txn).await?;
        appointments.push(row);
    }
    let event = events::event::Kind::BookingConfirmed(events::BookingConfirmed {
        reference: reference.to_string(),
        secret: secret.expose().to_owned(),
        recipient: Some(recipient(&cmd.citizen)),
        appointments: appointments.iter().map(appointment_info).collect(),
    });
    outbox::enqueue(&txn, event, now).await?;
    txn.commit().await?;
    Ok(BookingView {
        reference: reference.to_string(),
        status: BookingStatus::Confirmed,
        appointments,
        secret: Some(secret.expose().to_owned()),
        replayed: false,
    })
}

fn appointment_of(booking_id: &str, dose: i32, slot: &slot::Model) -> appointment::Model {
    appointment::Model {
        booking_id: booking_id.to_owned(),
        dose,
        slot_id: slot.id.clone(),
        centre_id: slot.centre_id.clone(),
        vaccine: slot.vaccine.clone(),
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
    }
}

async fn live_hold(
    txn: &impl ConnectionTrait,
    hold_id: &str,
    holder_key: &str,
    now: DateTime<Utc>,
) -> Result<hold::Model, BookingError> {
    hold::Entity::find_by_id(hold_id.to_owned())
        .filter(hold::Column::HolderKey.eq(holder_key))
        .filter(hold::Column::State.eq(HoldState::Live.as_str()))
        .filter(hold::Column::ExpiresAt.gt(now))
        .one(txn)
        .await?
        .ok_or(BookingError::HoldNotFound)
}

/// Marks a live hold consumed; false when it no longer is live (consumed
/// by another booking, released or expired meanwhile).
async fn consume_hold(
    txn: &impl ConnectionTrait,
    hold_id: &str,
    holder_key: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let consumed = hold::Entity::update_many()
        .col_expr(hold::Column::State, Expr::value(HoldState::Consumed.as_str()))
        .filter(hold::Column::Id.eq(hold_id))
        .filter(hold::Column::HolderKey.eq(holder_key))
        .filter(hold::Column::State.eq(HoldState::Live.as_str()))
        .filter(hold::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?;
    Ok(consumed.rows_affected == 1)
}

/// Inserts the booking row under a fresh reference.
async fn insert_booking(
    txn: &impl ConnectionTrait,
    booking_id: &str,
    citizen: &Citizen,
    secret: &Secret,
    series: &str,
    now: DateTime<Utc>,
) -> Result<Reference, BookingError> {
    let reference = Reference::generate();
    let row = booking::ActiveModel {
        id: Set(booking_id.to_owned()),
        reference: Set(reference.to_string()),
        secret_hash: Set(secret.hash().0),
        identity_key: Set(citizen.identity().as_str().to_owned()),
        status: Set(BookingStatus::Confirmed.as_str().to_owned()),
        first_name: Set(citizen.first_name.clone()),
        last_name: Set(citizen.last_name.clone()),
        birth_date: Set(citizen.birth_date),
        email: Set(citizen.contact.email.clone()),
        phone: Set(citizen.contact.phone.clone()),
        language: Set(citizen.language.code().to_owned()),
        created_at: Set(now),
        cancelled_at: Set(None),
        series: Set(series.to_owned()),
    };
    match booking::Entity::insert(row).exec_without_returning(txn).await {
        Ok(_) => Ok(reference),
        Err(err) if is_unique_violation(&err, "identity") => Err(BookingError::AlreadyBooked),
        // 40 bits of reference: a collision is about one in a trillion per
        // booking. PostgreSQL aborts the transaction on it, so it is not
        // retried in place: the request fails as a storage error, once.
        Err(err) => Err(err.into()),
    }
}

async fn replay_if_known(
    db: &DatabaseConnection,
    cmd: &BookCommand,
    now: DateTime<Utc>,
) -> Result<Option<BookingView>, BookingError> {
    let Some(key) = idempotency_key::Entity::find_by_id(cmd.idempotency_key.clone()).one(db).await? else {
        return Ok(None);
    };
    if key.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    if key.request_hash != cmd.request_hash {
        return Err(BookingError::IdempotencyConflict);
    }
    let row = booking::Entity::find_by_id(key.booking_id.clone()).one(db).await?.ok_or(BookingError::NotFound)?;
    let view = view_of(db, row).await?;
    Ok(Some(BookingView { secret: Some(key.secret), replayed: true, ..view }))
}

pub async fn get(db: &DatabaseConnection, reference: &Reference, secret: &Secret) -> Result<BookingView, BookingError> {
    let row = authorised(db, reference, secret).await?;
    Ok(view_of(db, row).await?)
}

/// Cancels and gives the places back. Cancelling twice is not an error.
pub async fn cancel(
    db: &DatabaseConnection,
    reference: &Reference,
    secret: &Secret,
    now: DateTime<Utc>,
) -> Result<BookingView, BookingError> {
    retrying(|| async {
        let txn = creneau_kit::db::begin(db).await?;
        let row = lock_authorised(&txn, reference, secret).await?;
        cancel_in(&txn, &row, None, now).await?;
        let view = view_of(&txn, row).await?;
        txn.commit().await?;
        Ok(BookingView { status: BookingStatus::Cancelled, ..view })
    })
    .await
}

/// Moves appointment `dose` to `slot_id`, atomically with whatever its
/// pair needs: a first dose moved keeps its second if still inside the
/// interval, else the second moves to `second_slot_id` or the earliest
/// slot that fits.
#[allow(clippy::too_many_arguments)]
pub async fn reschedule(
    db: &DatabaseConnection,
    vaccines: &Vaccines,
    reference: &Reference,
    secret: &Secret,
    dose: i32,
    slot_id: &str,
    second_slot_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<BookingView, BookingError> {
    retrying(|| async {
        let txn = creneau_kit::db::begin(db).await?;
        let row = lock_authorised(&txn, reference, secret).await?;
        if row.status != BookingStatus::Confirmed.as_str() {
            return Err(BookingError::Invalid("a cancelled booking cannot be moved".into()));
        }
        let before = view_of(&txn, row.clone()).await?.appointments;
        let current = before
            .iter()
            .find(|a| a.dose == dose)
            .ok_or_else(|| BookingError::Invalid(format!("this booking has no dose {dose}")))?
            .clone();
        if current.starts_at <= now {
            return Err(BookingError::Invalid("an appointment that has started cannot be moved".into()));
        }
        // Both rows in one order, so that two moves between the same two
        // slots in opposite directions wait for each other instead of
        // deadlocking.
        let target = if current.slot_id.as_str() < slot_id {
            places::lock_slot(&txn, &current.slot_id).await?;
            places::lock_slot(&txn, slot_id).await?
        } else {
            let target = places::lock_slot(&txn, slot_id).await?;
            places::lock_slot(&txn, &current.slot_id).await?;
            target
        };
        let target = target.ok_or_else(|| BookingError::SlotNotFound(slot_id.to_owned()))?;
        if target.vaccine != current.vaccine {
            return Err(BookingError::Invalid("an appointment moves to a slot of the same vaccine".into()));
        }
        if target.starts_at <= now {
            return Err(BookingError::SlotStarted);
        }
        let rules = vaccines
            .get(&current.vaccine)
            .ok_or_else(|| BookingError::Invalid(format!("unknown vaccine {}", current.vaccine)))?;
        if dose == 2 {
            let first = before.iter().find(|a| a.dose == 1).expect("a second dose has a first");
            if !rules.second_dose_fits(first.starts_at, target.starts_at) {
                return Err(BookingError::Invalid(format!(
                    "the second dose of {} is {} to {} days after the first",
                    rules.label, rules.min_interval_days, rules.max_interval_days
                )));
            }
        }
        if target.id != current.slot_id {
            move_to(&txn, &current, &target, now).await?;
        }
        if dose == 1
            && let Some(second) = before.iter().find(|a| a.dose == 2)
        {
            repair_second_dose(&txn, rules, &target, second, second_slot_id, now).await?;
        }
        let after = view_of(&txn, row.clone()).await?;
        if after.appointments != before {
            let event = events::event::Kind::BookingMoved(events::BookingMoved {
                reference: row.reference.clone(),
                recipient: Some(recipient_of(&row)),
                previous: before.iter().map(appointment_info).collect(),
                appointments: after.appointments.iter().map(appointment_info).collect(),
                reason: None,
            });
            outbox::enqueue(&txn, event, now).await?;
        }
        txn.commit().await?;
        Ok(after)
    })
    .await
}

/// Moves one appointment to `target`, whose row the caller has locked.
pub(super) async fn move_to(
    txn: &impl ConnectionTrait,
    current: &appointment::Model,
    target: &slot::Model,
    now: DateTime<Utc>,
) -> Result<(), BookingError> {
    if !places::take_place(txn, target, now).await? {
        return Err(if target.status == places::CLOSED { BookingError::SlotClosed } else { BookingError::SlotFull });
    }
    places::free_place(txn, &current.slot_id).await?;
    appointment::Entity::update_many()
        .col_expr(appointment::Column::SlotId, Expr::value(target.id.clone()))
        .col_expr(appointment::Column::CentreId, Expr::value(target.centre_id.clone()))
        .col_expr(appointment::Column::StartsAt, Expr::value(target.starts_at))
        .col_expr(appointment::Column::EndsAt, Expr::value(target.ends_at))
        .filter(appointment::Column::BookingId.eq(current.booking_id.clone()))
        .filter(appointment::Column::Dose.eq(current.dose))
        .exec(txn)
        .await?;
    Ok(())
}

/// After the first dose moved to `first`: keeps the second dose if it
/// still fits, else moves it to `chosen` or the earliest slot that fits.
pub(super) async fn repair_second_dose(
    txn: &impl ConnectionTrait,
    rules: &VaccineRules,
    first: &slot::Model,
    second: &appointment::Model,
    chosen: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), BookingError> {
    let stays = chosen.is_none_or(|id| id == second.slot_id)
        && second.centre_id == first.centre_id
        && rules.second_dose_fits(first.starts_at, second.starts_at);
    if stays {
        return Ok(());
    }
    let placed = places::place_second_dose(txn, first, rules, chosen, now).await??;
    places::free_place(txn, &second.slot_id).await?;
    appointment::Entity::update_many()
        .col_expr(appointment::Column::SlotId, Expr::value(placed.id.clone()))
        .col_expr(appointment::Column::CentreId, Expr::value(placed.centre_id.clone()))
        .col_expr(appointment::Column::StartsAt, Expr::value(placed.starts_at))
        .col_expr(appointment::Column::EndsAt, Expr::value(placed.ends_at))
        .filter(appointment::Column::BookingId.eq(second.booking_id.clone()))
        .filter(appointment::Column::Dose.eq(2))
        .exec(txn)
        .await?;
    Ok(())
}

fn recipient(citizen: &Citizen) -> events::Recipient {
    events::Recipient {
        first_name: citizen.first_name.clone(),
        last_name: citizen.last_name.clone(),
        email: citizen.contact.email.clone(),
        phone: citizen.contact.phone.clone(),
        language: citizen.language.code().to_owned(),
    }
}

pub(super) async fn cancel_row(
    txn: &impl ConnectionTrait,
    row: &booking::Model,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    cancel_in(txn, row, Some(reason.to_owned()), now).await
}
