//! Notification: turns relayed domain events into messages to citizens and
//! delivers each exactly once.
#![forbid(unsafe_code)]

pub mod dispatcher;
pub mod domain;
mod grpc;
pub mod maildir;
pub mod settings;
mod startup;
pub mod storage;

pub use settings::{Config, NotificationSettings, Settings};
pub use startup::{Application, SERVICE};
