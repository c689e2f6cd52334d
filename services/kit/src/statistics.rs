//! Planner statistics for tables that start empty and grow fast.
//!
//! PostgreSQL caches a generic plan for each prepared statement of a
//! connection. A connection that plans a key lookup while its table holds a
//! page or two gets a sequential scan, which is right at that size, and keeps
//! it until the table's statistics change. Autovacuum refreshes them at most
//! once per `autovacuum_naptime` (a minute): on a launch morning, that is a
//! minute of every booking scanning a table that grows by thousands of rows a
//! second. The keeper analyses such a table each time it has doubled since its
//! statistics were taken, until it is big enough for every lookup to be
//! planned on an index; autovacuum does the rest.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// Past this many rows, key lookups are planned on their index whatever
/// the growth, and autovacuum's pace is enough.
const CEILING: f64 = 100_000.0;
/// Growth below this many rows is not worth an ANALYZE.
const MIN_GROWTH: f64 = 100.0;

pub struct StatisticsKeeper {
    db: DatabaseConnection,
    tables: Vec<&'static str>,
    interval: Duration,
}

impl StatisticsKeeper {
    /// A keeper of `tables`' statistics, or `None` on a database other than
    /// PostgreSQL (SQLite plans every statement afresh).
    pub fn new(db: DatabaseConnection, tables: &[&'static str], interval: Duration) -> Option<Self> {
        assert!(
            tables.iter().all(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_lowercase() || c == '_')),
            "table names are plain identifiers"
        );
        (db.get_database_backend() == DbBackend::Postgres).then(|| Self { db, tables: tables.to_vec(), interval })
    }

    /// Runs until the task is dropped.
    pub async fn run(self) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.refresh_once().await {
                Ok(analysed) if !analysed.is_empty() => tracing::debug!(?analysed, "planner statistics refreshed"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not refresh planner statistics"),
            }
        }
    }

    /// Analyses the tables that have outgrown their statistics; returns them.
    pub async fn refresh_once(&self) -> Result<Vec<String>, DbErr> {
        let names = self.tables.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!(
                    "SELECT s.relname::text AS name, c.reltuples::float8 AS analysed, s.n_live_tup::float8 AS live \
                     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
                     WHERE s.schemaname = current_schema() AND s.relname IN ({names})"
                ),
            ))
            .await?;
        let mut stale = Vec::new();
        for row in rows {
            let (analysed, live): (f64, f64) = (row.try_get("", "analysed")?, row.try_get("", "live")?);
            if outgrown(analysed, live) {
                stale.push(row.try_get::<String>("", "name")?);
            }
        }
        if !stale.is_empty() {
            // SKIP_LOCKED: another replica analysing the same table is as good.
            self.db.execute_unprepared(&format!("ANALYZE (SKIP_LOCKED) {}", stale.join(", "))).await?;
        }
        Ok(stale)
    }
}

/// Whether a table with `live` rows has outgrown statistics taken at
/// `analysed` rows. Never analysed (negative): the planner assumes ten
/// pages at least and plans lookups on the index, so nothing to do yet.
fn outgrown(analysed: f64, live: f64) -> bool {
    (0.0..CEILING).contains(&analysed) && live >= (2.0 * analysed).max(analysed + MIN_GROWTH)
}

#[cfg(test)]
mod tests {
    use super::outgrown;

    #[test]
    fn a_small_table_is_analysed_each_time_it_doubles() {
        assert!(outgrown(0.0, 100.0));
        assert!(!outgrown(0.0, 99.0));
        assert!(!outgrown(1_000.0, 1_999.0));
        assert!(outgrown(1_000.0, 2_000.0));
        assert!(!outgrown(20.0, 110.0), "at least a hundred new rows");
    }

    #[test]
    fn never_analysed_and_large_tables_are_left_to_autovacuum() {
        assert!(!outgrown(-1.0, 50_000.0));
        assert!(!outgrown(100_000.0, 1_000_000.0));
    }
}
