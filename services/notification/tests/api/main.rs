//! API tests of notification over real gRPC, on PostgreSQL and SQLite.

mod deliver;
mod helpers;
