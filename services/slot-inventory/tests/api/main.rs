//! API tests of slot-inventory over real gRPC, each on a fresh PostgreSQL
//! database and on SQLite.

mod availability_stream;
mod booking;
mod concurrency;
mod doses;
mod helpers;
mod holds;
mod invariants;
mod relay;
mod rush_suite;
mod schedules;
mod slots;
mod statistics;
