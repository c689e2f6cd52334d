//! Benchmark harnesses.

pub mod booking;
pub mod search;
pub mod stats;
