//! Tables of the slot-inventory service.

mod m20261126_000001_slots_and_bookings;
mod m20261126_000002_holds_doses_schedules;
mod m20261130_000003_outbox_dead_letters;
mod m20261130_000004_availability_changes;

crate::migrator!(
    "seaql_migrations_slot_inventory",
    [
        m20261126_000001_slots_and_bookings::Migration,
        m20261126_000002_holds_doses_schedules::Migration,
        m20261130_000003_outbox_dead_letters::Migration,
        m20261130_000004_availability_changes::Migration,
    ]
);
