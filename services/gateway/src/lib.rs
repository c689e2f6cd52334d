//! Gateway: the public HTTP/JSON API of Créneau, mapped onto the services'
//! gRPC APIs.
#![forbid(unsafe_code)]

mod backends;
mod caching;
mod extract;
mod problem;
pub mod queue;
mod routes;
pub mod settings;
mod startup;

pub use settings::{Config, GatewaySettings, QueueSettings, Settings};
pub use startup::{Application, SERVICE, catch_panics};
