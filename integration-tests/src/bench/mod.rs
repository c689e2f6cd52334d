//! Benchmark harnesses.

pub mod booking;
pub mod freshness;
pub mod search;
pub mod soak;
pub mod stats;
