//! The runtime every Créneau service shares, written once: layered settings,
//! telemetry, the gRPC server with health, reflection and standard limits,
//! graceful shutdown, database connection and gRPC client channels.
//! Domain, storage and transport stay in each service.
#![forbid(unsafe_code)]

pub mod attestation;
pub mod client;
pub mod db;
pub mod deadline;
pub mod entrypoint;
pub mod errors;
pub mod metrics;
pub mod operations;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod statistics;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod vocab;

pub use settings::{DatabaseSettings, ServerSettings, TelemetrySettings};

/// The allocator every Créneau binary installs (`#[global_allocator]`):
/// a request allocates and frees hundreds of small buffers across tokio's
/// worker threads, where glibc's malloc spends a tenth of a busy service's
/// CPU on its arenas.
pub type Allocator = mimalloc::MiMalloc;
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;
