//! Work queues kept in a table (slot-inventory's outbox, notification's
//! messages): several replicas claim rows under a lease, so none takes
//! another's; each row is acknowledged on its own; a row that keeps failing
//! waits longer between attempts and, past a cap, becomes a dead letter
//! set aside with its reason while the rest flow, until an operator
//! replays it.
//!
//! The table has `id`, `lease_until`, `attempts` (failures so far),
//! `last_error`, `next_attempt_at` and `dead_at`, plus the columns named
//! here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Value};

use super::statement;

/// A queue table. Every name is a trusted constant, never user input.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    pub table: &'static str,
    /// The condition of rows still to be done (`published_at IS NULL`).
    pub pending: &'static str,
    /// What kind of row it is, for operators (`kind`, `channel`).
    pub kind_column: &'static str,
    /// When the row was made.
    pub created_column: &'static str,
    /// Whether `id` is a number (the outbox's) rather than text.
    pub numeric_ids: bool,
    /// Rows with the same value here are done one at a time, in id order:
    /// a row waits while an earlier one of the same value is still pending,
    /// even set aside as a dead letter (a booking's cancellation is not
    /// sent before its confirmation). Rows with no value wait for none.
    pub in_order_of: Option<&'static str>,
}

/// How often and how patiently a failing row is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failures after which the row becomes a dead letter.
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// From settings: `max_attempts` tries in all, the first wait
    /// `first_retry_ms`, both positive.
    pub fn new(max_attempts: u32, first_retry_ms: u64) -> Result<Self, String> {
        if max_attempts == 0 || first_retry_ms == 0 {
            return Err("retry attempts and the first retry's delay must be positive".into());
        }
        Ok(Self { max_attempts, first_delay: Duration::from_millis(first_retry_ms), ..Self::default() })
    }

    /// The defaults as settings read them (serde's `default = "…"`).
    pub fn default_max_attempts() -> u32 {
        Self::default().max_attempts
    }

    pub fn default_first_retry_ms() -> u64 {
        Self::default().first_delay.as_millis() as u64
    }

    /// The wait after the `attempts`-th failure: doubling from the first
    /// delay, capped.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_delay.saturating_mul(1 << doublings).min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    /// Eight attempts, 1 s to 64 s apart: about two minutes of trying.
    fn default() -> Self {
        Self { max_attempts: 8, first_delay: Duration::from_secs(1), max_delay: Duration::from_secs(120) }
    }
}

/// What became of a failed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Tried again at this time.
    RetryAt(DateTime<Utc>),
    /// Set aside: the cap was reached.
    Dead,
}

/// A row set aside, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: String,
    pub kind: String,
    pub reason: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub dead_at: DateTime<Utc>,
}

fn later(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(30))
}

impl Queue {
    fn id_is(&self) -> &'static str {
        "id = ?"
    }

    /// Ids cross as text (the outbox numbers its rows, messages name
    /// them) and are bound as their column's type, so the primary key
    /// finds them.
    fn id_value(&self, id: &str) -> Value {
        match (self.numeric_ids, id.parse::<i64>()) {
            (true, Ok(n)) => n.into(),
            // No row has such an id: it matches nothing.
            (true, Err(_)) => (-1i64).into(),
            (false, _) => id.to_owned().into(),
        }
    }

    /// Claims up to `limit` rows that are due for `lease`, oldest first;
    /// returns their ids.
    pub async fn claim(&self, db: &DatabaseConnection, lease: Duration, limit: u32) -> Result<Vec<String>, DbErr> {
        let now = Utc::now();
        // PostgreSQL: SKIP LOCKED keeps concurrent claimers off each other's
        // rows. SQLite has a single writer, so the plain subquery is enough.
        let lock = if db.get_database_backend() == DbBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        // Unqualified columns inside the NOT EXISTS name `earlier`'s.
        let in_order = match self.in_order_of {
            Some(column) => format!(
                "AND NOT EXISTS (SELECT 1 FROM {table} AS earlier WHERE earlier.{column} = q.{column} \
                 AND earlier.id < q.id AND ({pending}))",
                table = self.table,
                pending = self.pending,
            ),
            None => String::new(),
        };
        let sql = format!(
            "UPDATE {table} SET lease_until = ? \
             WHERE id IN (SELECT q.id FROM {table} AS q WHERE ({pending}) AND q.dead_at IS NULL \
             AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= ?) \
             AND (q.lease_until IS NULL OR q.lease_until < ?) {in_order} ORDER BY q.id LIMIT ? {lock}) \
             RETURNING CAST(id AS TEXT) AS id",
            table = self.table,
            pending = self.pending,
        );
        let values = [later(now, lease).into(), now.into(), now.into(), i64::from(limit).into()];
        let rows = db.query_all_raw(statement(db.get_database_backend(), &sql, values)).await?;
        let mut ids = rows.iter().map(|row| row.try_get::<String>("", "id")).collect::<Result<Vec<_>, _>>()?;
        // RETURNING does not keep the subquery's order.
        ids.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        Ok(ids)
    }

    /// Gives claimed rows back at once, not counted as failures: the
    /// receiver was not reached, which says nothing about the rows.
    pub async fn release(&self, db: &DatabaseConnection, ids: &[String]) -> Result<(), DbErr> {
        for id in ids {
            let sql = format!("UPDATE {} SET lease_until = NULL WHERE {}", self.table, self.id_is());
            db.execute_raw(statement(db.get_database_backend(), &sql, [self.id_value(id)])).await?;
        }
        Ok(())
    }

    /// Puts a row off until `delay` from now without counting a failure:
    /// what it needs is not there yet (a newer version of the receiver).
    pub async fn postpone(&self, db: &DatabaseConnection, id: &str, delay: Duration, why: &str) -> Result<(), DbErr> {
        let sql = format!(
            "UPDATE {} SET lease_until = NULL, next_attempt_at = ?, last_error = ? WHERE {}",
            self.table,
            self.id_is()
        );
        let values = [later(Utc::now(), delay).into(), why.to_owned().into(), self.id_value(id)];
        db.execute_raw(statement(db.get_database_backend(), &sql, values)).await?;
        Ok(())
    }

    /// Counts a failure of a claimed row: tried again after the policy's
    /// delay, or set aside once it has failed `max_attempts` times.
    pub async fn fail(
        &self,
        db: &DatabaseConnection,
        id: &str,
        why: &str,
        policy: &RetryPolicy,
    ) -> Result<Failed, DbErr> {
        let backend = db.get_database_backend();
        let sql = format!("SELECT attempts FROM {} WHERE {}", self.table, self.id_is());
        let row = db.query_one_raw(statement(backend, &sql, [self.id_value(id)])).await?;
        let before = match row {
            Some(row) => {
                row.try_get_by_index::<i32>(0).or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n as i32))?
            }
            None => return Err(DbErr::RecordNotFound(format!("{} row {id}", self.table))),
        };
        let attempts = u32::try_from(before).unwrap_or(0).saturating_add(1);
        let now = Utc::now();
        let failed = if attempts >= policy.max_attempts {
            Failed::Dead
        } else {
            Failed::RetryAt(later(now, policy.delay(attempts)))
        };
        let (next, dead): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = match failed {
            Failed::RetryAt(at) => (Some(at), None),
            Failed::Dead => (None, Some(now)),
        };
        let sql = format!(
            "UPDATE {} SET lease_until = NULL, attempts = ?, last_error = ?, next_attempt_at = ?, dead_at = ? \
             WHERE {}",
            self.table,
            self.id_is()
        );
        let values = [
            i32::try_from(attempts).unwrap_or(i32::MAX).into(),
            why.to_owned().into(),
            next.into(),
            dead.into(),
            self.id_value(id),
        ];
        db.execute_raw(statement(backend, &sql, values)).await?;
        if failed == Failed::Dead {
            tracing::warn!(table = self.table, id, attempts, reason = why, "set aside as a dead letter");
        }
        Ok(failed)
    }

    /// Sets a row aside at once: retrying cannot help (it cannot even be
    /// read).
    pub async fn bury(&self, db: &DatabaseConnection, id: &str, why: &str) -> Result<(), DbErr> {
        let sql = format!(
            "UPDATE {} SET lease_until = NULL, attempts = attempts + 1, last_error = ?, dead_at = ? WHERE {}",
            self.table,
            self.id_is()
        );
        let values = [why.to_owned().into(), Utc::now().into(), self.id_value(id)];
        db.execute_raw(statement(db.get_database_backend(), &sql, values)).await?;
        tracing::warn!(table = self.table, id, reason = why, "set aside as a dead letter");
        Ok(())
    }

    /// Dead letters, oldest first, and how many there are in all.
    pub async fn dead_letters(&self, db: &DatabaseConnection, limit: u32) -> Result<(Vec<DeadLetter>, u64), DbErr> {
        let backend = db.get_database_backend();
        let sql = format!(
            "SELECT CAST(id AS TEXT) AS id, {kind} AS kind, COALESCE(last_error, '') AS reason, attempts, \
             {created} AS created_at, dead_at FROM {table} WHERE dead_at IS NOT NULL ORDER BY dead_at, id LIMIT ?",
            kind = self.kind_column,
            created = self.created_column,
            table = self.table,
        );
        let rows = db.query_all_raw(statement(backend, &sql, [i64::from(limit).into()])).await?;
        let letters = rows
            .iter()
            .map(|row| {
                let attempts: i32 = row.try_get("", "attempts")?;
                Ok(DeadLetter {
                    id: row.try_get("", "id")?,
                    kind: row.try_get("", "kind")?,
                    reason: row.try_get("", "reason")?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    created_at: row.try_get("", "created_at")?,
                    dead_at: row.try_get("", "dead_at")?,
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        let sql = format!("SELECT COUNT(*) FROM {} WHERE dead_at IS NOT NULL", self.table);
        let total = match db.query_one_raw(statement(backend, &sql, [])).await? {
            Some(row) => row.try_get_by_index::<i64>(0).unwrap_or(0).unsigned_abs(),
            None => 0,
        };
        Ok((letters, total))
    }

    /// Puts dead letters back in the queue with their attempts reset:
    /// those named, or all of them. Returns how many.
    pub async fn replay(&self, db: &DatabaseConnection, ids: Option<&[String]>) -> Result<u64, DbErr> {
        let backend = db.get_database_backend();
        let reset = format!(
            "UPDATE {} SET dead_at = NULL, attempts = 0, next_attempt_at = NULL, lease_until = NULL \
             WHERE dead_at IS NOT NULL",
            self.table
        );
        let Some(ids) = ids else {
            return Ok(db.execute_raw(statement(backend, &reset, [])).await?.rows_affected());
        };
        let mut replayed = 0;
        for id in ids {
            let sql = format!("{reset} AND {}", self.id_is());
            replayed += db.execute_raw(statement(backend, &sql, [self.id_value(id)])).await?.rows_affected();
        }
        Ok(replayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let delays: Vec<u64> = (1..=9).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 120, 120]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(120), "no overflow");
    }
}
