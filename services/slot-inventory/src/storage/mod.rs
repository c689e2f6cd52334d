//! Queries of the slot-inventory service. Every invariant the business
//! depends on is decided by the database inside one transaction: the
//! conditional capacity update, the partial unique index on active
//! identities, and the idempotency key's primary key.

pub mod entities;
pub mod outbox;

use chrono::{DateTime, Utc};
use creneau_proto::notification::v1 as events;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};

use crate::domain::{BookingError, BookingStatus, Citizen, IdentityKey, NewSlot, Reference, Secret, SlotWindow};
use entities::{appointment, booking, idempotency_key, slot};

/// A validated booking request.
pub struct BookCommand {
    pub slot_id: String,
    pub citizen: Citizen,
    pub idempotency_key: String,
    /// Hash of everything the request asked for, to tell a retry from a
    /// different request reusing the key.
    pub request_hash: String,
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

pub async fn list_slots(
    db: &DatabaseConnection,
    centre_id: &str,
    window: SlotWindow,
    available_only: bool,
    now: DateTime<Utc>,
) -> Result<Vec<slot::Model>, DbErr> {
    let mut query = slot::Entity::find()
        .filter(slot::Column::CentreId.eq(centre_id))
        .filter(slot::Column::StartsAt.gte(std::cmp::max(window.start, now)))
        .filter(slot::Column::StartsAt.lt(window.end));
    if available_only {
        query = query.filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)));
    }
    query.order_by_asc(slot::Column::StartsAt).limit(2000).all(db).await
}

#[derive(Debug, FromQueryResult)]
pub struct Availability {
    pub centre_id: String,
    pub next_slot: Option<DateTime<Utc>>,
    pub available: Option<i64>,
}

/// Per centre: the earliest slot with room, and how many places are left.
pub async fn availability(
    db: &DatabaseConnection,
    centre_ids: &[String],
    window: SlotWindow,
    vaccine: Option<&str>,
) -> Result<Vec<Availability>, DbErr> {
    let mut query = slot::Entity::find()
        .select_only()
        .column(slot::Column::CentreId)
        .column_as(slot::Column::StartsAt.min(), "next_slot")
        .column_as(Expr::col(slot::Column::Capacity).sub(Expr::col(slot::Column::Booked)).sum(), "available")
        .filter(slot::Column::CentreId.is_in(centre_ids.iter().cloned()))
        .filter(slot::Column::StartsAt.gte(window.start))
        .filter(slot::Column::StartsAt.lt(window.end))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .group_by(slot::Column::CentreId);
    if let Some(vaccine) = vaccine {
        query = query.filter(slot::Column::Vaccine.eq(vaccine));
    }
    query.into_model::<Availability>().all(db).await
}

/// Publishes slots; a slot that already exists (same centre, vaccine and
/// start) is left as it is, so publishing twice creates nothing new.
pub async fn create_slots(
    db: &DatabaseConnection,
    centre_id: &str,
    slots: &[NewSlot],
    now: DateTime<Utc>,
) -> Result<Vec<slot::Model>, DbErr> {
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    let rows = slots.iter().map(|s| slot::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        centre_id: Set(centre_id.to_owned()),
        vaccine: Set(s.vaccine.code().to_owned()),
        starts_at: Set(s.starts_at),
        ends_at: Set(s.ends_at),
        capacity: Set(s.capacity as i32),
        booked: Set(0),
        created_at: Set(now),
    });
    let txn = db.begin().await?;
    slot::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([slot::Column::CentreId, slot::Column::Vaccine, slot::Column::StartsAt])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let first = slots.iter().map(|s| s.starts_at).min().expect("not empty");
    let last = slots.iter().map(|s| s.starts_at).max().expect("not empty");
    let stored = slot::Entity::find()
        .filter(slot::Column::CentreId.eq(centre_id))
        .filter(slot::Column::StartsAt.between(first, last))
        .order_by_asc(slot::Column::StartsAt)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(stored
        .into_iter()
        .filter(|row| slots.iter().any(|s| s.starts_at == row.starts_at && s.vaccine.code() == row.vaccine))
        .collect())
}

/// Books one place. One transaction: claim the idempotency key, take the
/// place with a conditional update, insert the booking (the partial unique
/// index refuses a second active booking of the same person), its
/// appointment and the outbox event.
pub async fn book(db: &DatabaseConnection, cmd: &BookCommand, now: DateTime<Utc>) -> Result<BookingView, BookingError> {
    match try_book(db, cmd, now).await {
        Err(BookingError::Storage(err)) if is_unique_violation(&err, "idempotency") => replay(db, cmd).await,
        other => other,
    }
}

async fn try_book(db: &DatabaseConnection, cmd: &BookCommand, now: DateTime<Utc>) -> Result<BookingView, BookingError> {
    if let Some(view) = replay_if_known(db, cmd).await? {
        return Ok(view);
    }
    let txn = db.begin().await?;
    let booking_id = uuid::Uuid::now_v7().to_string();
    let secret = Secret::generate();

    // First, so that a concurrent retry with the same key waits on this
    // row and then replays, instead of racing for a second place.
    idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        key: Set(cmd.idempotency_key.clone()),
        request_hash: Set(cmd.request_hash.clone()),
        booking_id: Set(booking_id.clone()),
        secret: Set(secret.expose().to_owned()),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;

    let slot = slot::Entity::find_by_id(cmd.slot_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| BookingError::SlotNotFound(cmd.slot_id.clone()))?;
    if slot.starts_at <= now {
        return Err(BookingError::SlotStarted);
    }
    let taken = slot::Entity::update_many()
        .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).add(1))
        .filter(slot::Column::Id.eq(slot.id.clone()))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .exec(&txn)
        .await?;
    if taken.rows_affected == 0 {
        return Err(BookingError::SlotFull);
    }

    let citizen = &cmd.citizen;
    let reference = insert_booking(&txn, &booking_id, citizen, &secret, now).await?;
    let appointment = appointment::Model {
        booking_id: booking_id.clone(),
        dose: 1,
        slot_id: slot.id.clone(),
        centre_id: slot.centre_id.clone(),
        vaccine: slot.vaccine.clone(),
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
    };
    appointment::Entity::insert(appointment::ActiveModel::from(appointment.clone()))
        .exec_without_returning(&txn)
        .await?;
    let event = events::event::Kind::BookingConfirmed(events::BookingConfirmed {
        reference: reference.to_string(),
        secret: secret.expose().to_owned(),
        recipient: Some(recipient(citizen)),
        appointments: vec![appointment_info(&appointment)],
    });
    outbox::enqueue(&txn, event, now).await?;
    txn.commit().await?;
    Ok(BookingView {
        reference: reference.to_string(),
        status: BookingStatus::Confirmed,
        appointments: vec![appointment],
        secret: Some(secret.expose().to_owned()),
        replayed: false,
    })
}

/// Inserts the booking row under a fresh reference, drawing again on the
/// rare reference collision.
async fn insert_booking(
    txn: &impl ConnectionTrait,
    booking_id: &str,
    citizen: &Citizen,
    secret: &Secret,
    now: DateTime<Utc>,
) -> Result<Reference, BookingError> {
    let identity: IdentityKey = citizen.identity();
    for _ in 0..5 {
        let reference = Reference::generate();
        let row = booking::ActiveModel {
            id: Set(booking_id.to_owned()),
            reference: Set(reference.to_string()),
            secret_hash: Set(secret.hash().0),
            identity_key: Set(identity.as_str().to_owned()),
            status: Set(BookingStatus::Confirmed.as_str().to_owned()),
            first_name: Set(citizen.first_name.clone()),
            last_name: Set(citizen.last_name.clone()),
            birth_date: Set(citizen.birth_date),
            email: Set(citizen.contact.email.clone()),
            phone: Set(citizen.contact.phone.clone()),
            language: Set(citizen.language.code().to_owned()),
            created_at: Set(now),
            cancelled_at: Set(None),
        };
        match booking::Entity::insert(row).exec_without_returning(txn).await {
            Ok(_) => return Ok(reference),
            Err(err) if is_unique_violation(&err, "identity") => return Err(BookingError::AlreadyBooked),
            // PostgreSQL aborts the transaction on any violation, so a
            // reference collision cannot be retried in place: fail the
            // request (1 in ~10^12 per booking) rather than corrupt it.
            Err(err)
                if is_unique_violation(&err, "reference")
                    && txn.get_database_backend() != sea_orm::DbBackend::Postgres =>
            {
                continue;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(BookingError::Storage(DbErr::Custom("could not draw a unique reference".into())))
}

async fn replay_if_known(db: &DatabaseConnection, cmd: &BookCommand) -> Result<Option<BookingView>, BookingError> {
    let Some(key) = idempotency_key::Entity::find_by_id(cmd.idempotency_key.clone()).one(db).await? else {
        return Ok(None);
    };
    if key.request_hash != cmd.request_hash {
        return Err(BookingError::IdempotencyConflict);
    }
    let view = load_by_id(db, &key.booking_id).await?.ok_or(BookingError::NotFound)?;
    Ok(Some(BookingView { secret: Some(key.secret), replayed: true, ..view }))
}

async fn replay(db: &DatabaseConnection, cmd: &BookCommand) -> Result<BookingView, BookingError> {
    replay_if_known(db, cmd)
        .await?
        .ok_or_else(|| BookingError::Storage(DbErr::Custom("idempotency key vanished".into())))
}

async fn load_by_id(db: &impl ConnectionTrait, booking_id: &str) -> Result<Option<BookingView>, DbErr> {
    let Some(row) = booking::Entity::find_by_id(booking_id.to_owned()).one(db).await? else {
        return Ok(None);
    };
    view_of(db, row).await.map(Some)
}

async fn view_of(db: &impl ConnectionTrait, row: booking::Model) -> Result<BookingView, DbErr> {
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
) -> Result<booking::Model, BookingError> {
    let row = booking::Entity::find()
        .filter(booking::Column::Reference.eq(reference.as_str()))
        .one(db)
        .await?
        .ok_or(BookingError::NotFound)?;
    if crate::domain::SecretHash(row.secret_hash.clone()).matches(secret) {
        Ok(row)
    } else {
        Err(BookingError::NotFound)
    }
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
    let txn = db.begin().await?;
    let row = authorised(&txn, reference, secret).await?;
    // Conditional on the status, so concurrent cancels free places once.
    let changed = booking::Entity::update_many()
        .col_expr(booking::Column::Status, Expr::value(BookingStatus::Cancelled.as_str()))
        .col_expr(booking::Column::CancelledAt, Expr::value(now))
        .filter(booking::Column::Id.eq(row.id.clone()))
        .filter(booking::Column::Status.eq(BookingStatus::Confirmed.as_str()))
        .exec(&txn)
        .await?;
    let view = view_of(&txn, row.clone()).await?;
    if changed.rows_affected == 1 {
        for appointment in &view.appointments {
            slot::Entity::update_many()
                .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).sub(1))
                .filter(slot::Column::Id.eq(appointment.slot_id.clone()))
                .exec(&txn)
                .await?;
        }
        let event = events::event::Kind::BookingCancelled(events::BookingCancelled {
            reference: row.reference.clone(),
            recipient: Some(events::Recipient {
                first_name: row.first_name.clone(),
                last_name: row.last_name.clone(),
                email: row.email.clone(),
                phone: row.phone.clone(),
                language: row.language.clone(),
            }),
            appointments: view.appointments.iter().map(appointment_info).collect(),
        });
        outbox::enqueue(&txn, event, now).await?;
    }
    txn.commit().await?;
    Ok(BookingView { status: BookingStatus::Cancelled, ..view })
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

fn appointment_info(a: &appointment::Model) -> events::AppointmentInfo {
    events::AppointmentInfo {
        dose: a.dose as u32,
        centre_id: a.centre_id.clone(),
        vaccine: a.vaccine.clone(),
        starts_at: a.starts_at.to_rfc3339(),
        ends_at: a.ends_at.to_rfc3339(),
    }
}
