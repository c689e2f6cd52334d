//! Queries of the slot-inventory service. Every invariant the business
//! depends on is decided by the database inside one transaction: places
//! are taken by a conditional update on a locked slot row, the partial
//! unique index refuses a second active booking of a person, and the
//! idempotency key's primary key turns a concurrent retry into a replay.

pub mod availability;
mod booking;
pub mod entities;
mod holds;
pub mod outbox;
mod places;
mod schedules;
mod slots;

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use creneau_proto::notification::v1 as events;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr};

pub use booking::{book, cancel, get, reschedule};
pub use holds::{HoldView, hold, release_hold};
pub use places::{VaccineCatalogue, Vaccines, all_vaccines};
pub use schedules::{SessionAction, SessionOutcome, cancel_session, close_slots, create_schedule};
pub use slots::{Availability, SlotView, availability, create_slots, list_slots};

use crate::domain::{BookingError, BookingStatus, Citizen, Reference, Secret};
use entities::{appointment, booking as booking_row};

/// Which place a booking takes.
#[derive(Debug, Clone)]
pub enum Target {
    Slot(String),
    /// The place held by this hold, for its holder only.
    Hold {
        hold_id: String,
        holder_key: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseRequest {
    /// The first dose, and the second when the vaccine needs one.
    First,
    Booster {
        last_dose: NaiveDate,
    },
}

/// A validated booking request.
pub struct BookCommand {
    pub target: Target,
    pub second_slot_id: Option<String>,
    pub dose: DoseRequest,
    pub citizen: Citizen,
    pub idempotency_key: String,
    /// Hash of everything the request asked for, to tell a retry from a
    /// different request reusing the key.
    pub request_hash: String,
    pub idempotency_ttl: chrono::Duration,
}

/// A booking as the API shows it.
#[derive(Debug, Clone)]
pub struct BookingView {
    pub reference: String,
    pub status: BookingStatus,
    pub appointments: Vec<appointment::Model>,
    /// Only for the response to `Book` (and its replays).
    pub secret: Option<String>,
    pub replayed: bool,
}

fn is_unique_violation(err: &DbErr, needle: &str) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(msg)) if msg.contains(needle))
}

/// Runs a transaction again when PostgreSQL aborted it to break a
/// deadlock or a serialization conflict, or when it gave up on meeting a
/// concurrent change: nothing of it was committed.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, BookingError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BookingError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(BookingError::Contended) if tries < 5 => {
                tries += 1;
                tracing::debug!(tries, "transaction run again after a concurrent change");
            }
            Err(BookingError::Storage(err)) if creneau_kit::db::is_retryable(&err) && tries < 5 => {
                tries += 1;
                tracing::debug!(tries, "transaction retried after a conflict");
            }
            other => return other,
        }
    }
}

async fn view_of(db: &impl ConnectionTrait, row: booking_row::Model) -> Result<BookingView, DbErr> {
    let appointments = appointment::Entity::find()
        .filter(appointment::Column::BookingId.eq(row.id.clone()))
        .order_by_asc(appointment::Column::Dose)
        .all(db)
        .await?;
    Ok(BookingView {
        reference: row.reference,
        status: BookingStatus::parse(&row.status),
        appointments,
        secret: None,
        replayed: false,
    })
}

/// The booking, if `secret` is its secret. A wrong secret and an unknown
/// reference look the same to the caller.
async fn authorised(
    db: &impl ConnectionTrait,
    reference: &Reference,
    secret: &Secret,
) -> Result<booking_row::Model, BookingError> {
    let query = booking_row::Entity::find().filter(booking_row::Column::Reference.eq(reference.as_str()));
    check_secret(query.one(db).await?, secret)
}

/// The booking, as [`authorised`], its row locked until the transaction
/// ends. Every change to a booking (cancel, move, a session cancelled by
/// staff) takes this lock first and reads the booking's state and its
/// appointments after it: two changes to one booking run one after the
/// other, the second seeing what the first did, so a place is never freed
/// twice.
async fn lock_authorised(
    txn: &impl ConnectionTrait,
    reference: &Reference,
    secret: &Secret,
) -> Result<booking_row::Model, BookingError> {
    let query = booking_row::Entity::find().filter(booking_row::Column::Reference.eq(reference.as_str()));
    check_secret(query.lock_exclusive().one(txn).await?, secret)
}

fn check_secret(row: Option<booking_row::Model>, secret: &Secret) -> Result<booking_row::Model, BookingError> {
    let row = row.ok_or(BookingError::NotFound)?;
    if crate::domain::SecretHash(row.secret_hash.clone()).matches(secret) {
        Ok(row)
    } else {
        Err(BookingError::NotFound)
    }
}

fn recipient_of(row: &booking_row::Model) -> events::Recipient {
    events::Recipient {
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        email: row.email.clone(),
        phone: row.phone.clone(),
        language: row.language.clone(),
    }
}

fn appointment_info(a: &appointment::Model) -> events::AppointmentInfo {
    events::AppointmentInfo {
        dose: a.dose as u32,
        centre_id: a.centre_id.clone(),
        vaccine: a.vaccine.clone(),
        starts_at: a.starts_at.to_rfc3339(),
        ends_at: a.ends_at.to_rfc3339(),
    }
}

/// Cancels a confirmed booking inside `txn`: frees its places and writes
/// one event. False when it was not confirmed (already cancelled).
async fn cancel_in(
    txn: &impl ConnectionTrait,
    row: &booking_row::Model,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    // Conditional on the status, so concurrent cancels free places once.
    let changed = booking_row::Entity::update_many()
        .col_expr(booking_row::Column::Status, Expr::value(BookingStatus::Cancelled.as_str()))
        .col_expr(booking_row::Column::CancelledAt, Expr::value(now))
        .filter(booking_row::Column::Id.eq(row.id.clone()))
        .filter(booking_row::Column::Status.eq(BookingStatus::Confirmed.as_str()))
        .exec(txn)
        .await?;
    if changed.rows_affected == 0 {
        return Ok(false);
    }
    let view = view_of(txn, row.clone()).await?;
    for appointment in &view.appointments {
        places::free_place(txn, &appointment.slot_id).await?;
    }
    let event = events::event::Kind::BookingCancelled(events::BookingCancelled {
        reference: row.reference.clone(),
        recipient: Some(recipient_of(row)),
        appointments: view.appointments.iter().map(appointment_info).collect(),
        reason,
    });
    outbox::enqueue(txn, event, now).await?;
    Ok(true)
}
