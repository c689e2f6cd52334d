//! The waiting room's shared state in the gateway's own tables: the join
//! log, the leader's lease with the board it publishes, and each replica's
//! signals. Every replica writes its joins and reads the board once a
//! second; no request waits on this database.

use creneau_kit::db::statement;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Value};

use super::admission::Signals;
use super::room::Board;

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

/// Joins per statement: well under either database's parameter limit.
const JOINS_PER_INSERT: usize = 2_000;

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Records joins (key, département). A key already there (a collision
    /// of the random bits within one millisecond) is kept once: that
    /// ticket still goes in by its key, uncounted.
    pub async fn add_joins(&self, joins: &[(u64, String)]) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        for chunk in joins.chunks(JOINS_PER_INSERT) {
            let rows = vec!["(?, ?)"; chunk.len()].join(", ");
            let sql = format!("INSERT INTO queue_joins (key, department) VALUES {rows} ON CONFLICT (key) DO NOTHING");
            let values = chunk.iter().flat_map(|(key, d)| [Value::from(*key as i64), Value::from(d.clone())]);
            self.db.execute_raw(statement(backend, &sql, values)).await?;
        }
        Ok(())
    }

    /// Joins with a key in `(after, through]`, in key order.
    pub async fn joins(&self, after: u64, through: u64) -> Result<Vec<(u64, String)>, DbErr> {
        let backend = self.db.get_database_backend();
        let sql = "SELECT key, department FROM queue_joins WHERE key > ? AND key <= ? ORDER BY key";
        let rows =
            self.db.query_all_raw(statement(backend, sql, [(after as i64).into(), (through as i64).into()])).await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get::<i64>("", "key")? as u64, r.try_get::<String>("", "department")?)))
            .collect()
    }

    /// Forgets joins up to `through`: admitted, or older than any ticket.
    pub async fn forget_joins(&self, through: u64) -> Result<u64, DbErr> {
        let backend = self.db.get_database_backend();
        let sql = "DELETE FROM queue_joins WHERE key <= ?";
        Ok(self.db.execute_raw(statement(backend, sql, [(through as i64).into()])).await?.rows_affected())
    }

    /// Takes or keeps the lead until `until_ms`; true when `replica` leads.
    pub async fn lead(&self, replica: &str, now_ms: i64, until_ms: i64) -> Result<bool, DbErr> {
        let backend = self.db.get_database_backend();
        let sql = "UPDATE queue_room SET leader = ?, lease_until_ms = ? \
                   WHERE id = 1 AND (leader = ? OR lease_until_ms < ?)";
        let values = [replica.into(), until_ms.into(), replica.into(), now_ms.into()];
        Ok(self.db.execute_raw(statement(backend, sql, values)).await?.rows_affected() == 1)
    }

    /// Gives the lead up at once, for a replica that stops.
    pub async fn resign(&self, replica: &str) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let sql = "UPDATE queue_room SET lease_until_ms = 0 WHERE id = 1 AND leader = ?";
        self.db.execute_raw(statement(backend, sql, [replica.into()])).await?;
        Ok(())
    }

    /// Publishes `board` if `replica` still leads; false if it lost the lead.
    pub async fn publish(&self, replica: &str, board: &Board) -> Result<bool, DbErr> {
        let backend = self.db.get_database_backend();
        let body = serde_json::to_string(board).map_err(|e| DbErr::Custom(e.to_string()))?;
        let sql = "UPDATE queue_room SET board = ?, version = version + 1 WHERE id = 1 AND leader = ?";
        Ok(self.db.execute_raw(statement(backend, sql, [body.into(), replica.into()])).await?.rows_affected() == 1)
    }

    /// The board last published, if any.
    pub async fn board(&self) -> Result<Option<Board>, DbErr> {
        let backend = self.db.get_database_backend();
        let row = self.db.query_one_raw(statement(backend, "SELECT board FROM queue_room WHERE id = 1", [])).await?;
        let Some(body) = row.map(|r| r.try_get::<String>("", "board")).transpose()? else { return Ok(None) };
        if body.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&body).map(Some).map_err(|e| DbErr::Custom(format!("unreadable board: {e}")))
    }

    /// Records what `replica` saw of the platform over its last second.
    pub async fn report(&self, replica: &str, now_ms: i64, signals: Signals) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let body = format!(
            "{} {} {}",
            if signals.booking_latency_ms.is_finite() { signals.booking_latency_ms } else { -1.0 },
            signals.in_flight,
            signals.refused
        );
        let sql = "INSERT INTO queue_signals (replica, reported_ms, signals) VALUES (?, ?, ?) \
                   ON CONFLICT (replica) DO UPDATE SET reported_ms = excluded.reported_ms, signals = excluded.signals";
        self.db.execute_raw(statement(backend, sql, [replica.into(), now_ms.into(), body.into()])).await?;
        Ok(())
    }

    /// Every replica's signals reported since `since_ms`, added up: the
    /// worst latency, the sum of calls in flight and of refusals.
    pub async fn signals(&self, since_ms: i64) -> Result<Option<Signals>, DbErr> {
        let backend = self.db.get_database_backend();
        let sql = "SELECT signals FROM queue_signals WHERE reported_ms >= ?";
        let rows = self.db.query_all_raw(statement(backend, sql, [since_ms.into()])).await?;
        let mut total: Option<Signals> = None;
        for row in rows {
            let body: String = row.try_get("", "signals")?;
            let mut parts = body.split(' ');
            let (Some(latency), Some(in_flight), Some(refused)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(latency), Ok(in_flight), Ok(refused)) =
                (latency.parse::<f64>(), in_flight.parse::<u32>(), refused.parse::<u32>())
            else {
                continue;
            };
            let t = total.get_or_insert(Signals { booking_latency_ms: 0.0, in_flight: 0, refused: 0 });
            t.booking_latency_ms = t.booking_latency_ms.max(latency);
            t.in_flight += in_flight;
            t.refused += refused;
        }
        Ok(total)
    }
}
