//! Slot-inventory domain: parsed inputs and the rules bookings follow.
//! Everything here is pure; storage enforces the same invariants again in
//! the database, where concurrency cannot get around them.

pub mod availability;
mod booking;
mod citizen;
mod hold;
mod schedule;
mod slot;
mod vaccine;

pub use booking::{BookingStatus, Reference, Secret, SecretHash};
pub use citizen::{Citizen, Contact, IdentityKey, Language};
pub use hold::HoldState;
pub use schedule::{Schedule, parse_date, parse_time, parse_zone, session_bounds};
pub use slot::{NewSlot, Places, SlotWindow, day_parts};
pub use vaccine::{VaccineRules, Window};

use creneau_kit::attestation::AttestationError;
use creneau_kit::vocab::calendar::CalendarError;
use creneau_kit::vocab::id::InvalidId;

/// Why a booking operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("{0}")]
    Invalid(String),
    #[error("slot {0} does not exist")]
    SlotNotFound(String),
    #[error("this slot has no place left")]
    SlotFull,
    #[error("this slot is closed")]
    SlotClosed,
    #[error("the second-dose slot has no place left")]
    SecondSlotFull,
    #[error("no slot for the second dose between {0} and {1} at this centre")]
    NoSecondDoseSlot(chrono::NaiveDate, chrono::NaiveDate),
    #[error("this hold does not exist, has expired or is not yours")]
    HoldNotFound,
    #[error("another hold of yours is being created")]
    HoldConflict,
    #[error("this slot has already started")]
    SlotStarted,
    #[error("this person already has an active booking")]
    AlreadyBooked,
    #[error("an eligibility attestation is required: check eligibility first")]
    NotEligible,
    #[error("invalid attestation: {0}")]
    InvalidAttestation(#[from] AttestationError),
    #[error("the attestation was issued for another birth date")]
    AttestationMismatch,
    #[error("this idempotency key was used with a different request")]
    IdempotencyConflict,
    #[error("no booking with this reference and secret")]
    NotFound,
    /// A concurrent change got in the way; nothing was written, and the
    /// operation may simply run again.
    #[error("a concurrent change got in the way; retry")]
    Contended,
    #[error("storage: {0}")]
    Storage(#[from] sea_orm::DbErr),
}

impl From<CalendarError> for BookingError {
    fn from(error: CalendarError) -> Self {
        Self::Invalid(error.to_string())
    }
}

impl From<InvalidId> for BookingError {
    fn from(error: InvalidId) -> Self {
        Self::Invalid(error.to_string())
    }
}
