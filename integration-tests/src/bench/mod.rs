//! Benchmark harnesses.

pub mod booking;
pub mod search;
pub mod soak;
pub mod stats;
