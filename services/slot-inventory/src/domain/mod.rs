//! Slot-inventory domain: parsed inputs and the rules bookings follow.
//! Everything here is pure; storage enforces the same invariants again in
//! the database, where concurrency cannot get around them.

mod booking;
mod citizen;
mod slot;

pub use booking::{BookingStatus, Reference, Secret, SecretHash};
pub use citizen::{Citizen, Contact, IdentityKey, Language};
pub use slot::{NewSlot, SlotWindow};

use creneau_kit::attestation::AttestationError;

/// Why a booking operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("{0}")]
    Invalid(String),
    #[error("slot {0} does not exist")]
    SlotNotFound(String),
    #[error("this slot has no place left")]
    SlotFull,
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
    #[error("storage: {0}")]
    Storage(#[from] sea_orm::DbErr),
}
