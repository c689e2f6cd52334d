//! Eligibility: who may book, decided from rules stored as data, proven
//! by a signed attestation that the booking path verifies offline.
#![forbid(unsafe_code)]

pub mod domain;
mod grpc;
pub mod rule_book;
pub mod settings;
mod startup;
pub mod storage;

pub use settings::{Config, EligibilitySettings, Settings};
pub use startup::{Application, SERVICE};
