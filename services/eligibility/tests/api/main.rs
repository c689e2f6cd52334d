//! API tests of eligibility over real gRPC, on PostgreSQL and SQLite.

mod check;
mod helpers;
mod rules;
