//! Tables of the gateway: the waiting room's small shared state.

mod m20261204_000001_waiting_room;

crate::migrator!("seaql_migrations_gateway", [m20261204_000001_waiting_room::Migration]);
