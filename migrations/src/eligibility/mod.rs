//! Tables of the eligibility service.

mod m20261126_000001_rules;
mod m20261126_000002_rule_sets;

crate::migrator!(
    "seaql_migrations_eligibility",
    [m20261126_000001_rules::Migration, m20261126_000002_rule_sets::Migration]
);
