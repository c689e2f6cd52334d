//! Tables of the notification service.

mod m20261126_000001_messages;
mod m20261130_000002_message_dead_letters;

crate::migrator!(
    "seaql_migrations_notification",
    [m20261126_000001_messages::Migration, m20261130_000002_message_dead_letters::Migration]
);
