//! Slot inventory: slots, bookings and their capacity, and the outbox of
//! booking events.
#![forbid(unsafe_code)]

pub mod availability;
pub mod domain;
mod grpc;
pub mod invariants;
pub mod relay;
#[cfg(feature = "test-util")]
pub mod scenarios;
pub mod settings;
mod slot_lists;
mod startup;
pub mod storage;

pub use settings::{Config, Settings, SlotInventorySettings};
pub use startup::{Application, GROWING_TABLES, SERVICE};
