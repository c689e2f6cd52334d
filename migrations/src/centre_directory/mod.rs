//! Tables of the centre-directory service.

mod m20261126_000001_centres;

crate::migrator!("seaql_migrations_centre_directory", [m20261126_000001_centres::Migration]);
