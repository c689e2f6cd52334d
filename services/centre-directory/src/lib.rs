//! Centre directory: the published vaccination centres, searchable by
//! place, with live availability streamed from slot-inventory; every
//! search is answered from memory.
#![forbid(unsafe_code)]

pub mod domain;
pub mod feeds;
mod grpc;
pub mod memory;
pub mod settings;
mod startup;
pub mod storage;

pub use settings::{CentreDirectorySettings, Config, Settings};
pub use startup::{AVAILABILITY, Application, SERVICE};
