//! Créneau in one process: the whole platform for a local run or for
//! end-to-end tests, demo data, and the command line around it.
#![forbid(unsafe_code)]

pub mod demo;
pub mod platform;
mod serve;

pub use platform::{Databases, Platform, PlatformConfig, migrate_all};
pub use serve::{SERVICES, serve};
