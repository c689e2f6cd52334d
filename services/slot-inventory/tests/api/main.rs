//! API tests of slot-inventory over real gRPC, each on a fresh PostgreSQL
//! database and on SQLite.

mod booking;
mod concurrency;
mod helpers;
mod relay;
mod slots;
