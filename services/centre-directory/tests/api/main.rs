//! API tests of the centre directory over real gRPC, with a real
//! slot-inventory behind it, on PostgreSQL and SQLite.

mod departments;
mod helpers;
mod import;
mod publication;
mod search;
mod stream;
