//! Tables of the slot-inventory service.

mod m20261126_000001_slots_and_bookings;

crate::migrator!("seaql_migrations_slot_inventory", [m20261126_000001_slots_and_bookings::Migration]);
