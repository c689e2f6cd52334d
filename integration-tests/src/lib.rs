//! Benchmarks and end-to-end tests of Créneau. The tests live in `tests/`;
//! the benchmark harnesses, which print figures rather than pass or fail,
//! live here.
#![forbid(unsafe_code)]

pub mod bench;
pub mod rush;
