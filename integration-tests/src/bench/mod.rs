//! Benchmark harnesses.

pub mod booking;
pub mod search;
mod stats;
