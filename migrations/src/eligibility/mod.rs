//! Tables of the eligibility service.

mod m20261126_000001_rules;

crate::migrator!("seaql_migrations_eligibility", [m20261126_000001_rules::Migration]);
