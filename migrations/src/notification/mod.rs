//! Tables of the notification service.

mod m20261126_000001_messages;

crate::migrator!("seaql_migrations_notification", [m20261126_000001_messages::Migration]);
