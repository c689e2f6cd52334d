//! API tests of notification over real gRPC, on PostgreSQL and SQLite.

mod dead_letters;
mod deliver;
mod helpers;
