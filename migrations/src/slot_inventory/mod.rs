//! Tables of the slot-inventory service.

mod m20261126_000001_slots_and_bookings;
mod m20261126_000002_holds_doses_schedules;

crate::migrator!(
    "seaql_migrations_slot_inventory",
    [m20261126_000001_slots_and_bookings::Migration, m20261126_000002_holds_doses_schedules::Migration]
);
