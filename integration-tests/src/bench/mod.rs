//! Benchmark harnesses.

pub mod booking;
mod stats;
