//! Centre directory: the published vaccination centres, searchable by
//! place, with live availability from slot-inventory.
#![forbid(unsafe_code)]

pub mod domain;
mod grpc;
pub mod settings;
mod startup;
pub mod storage;

pub use settings::{CentreDirectorySettings, Config, Settings};
pub use startup::{Application, SERVICE};
