//! Tables of the centre-directory service.

mod m20261126_000001_centres;
mod m20261126_000002_import_and_closing;
mod m20261130_000003_directory_changes;

crate::migrator!(
    "seaql_migrations_centre_directory",
    [
        m20261126_000001_centres::Migration,
        m20261126_000002_import_and_closing::Migration,
        m20261130_000003_directory_changes::Migration,
    ]
);
