//! Tailing a change feed (a table its triggers fill with the key of every
//! changed row; see the migrations' `create_change_feed`): which keys
//! changed since a position, with no change skipped and none reported
//! before it is committed.
//!
//! On PostgreSQL a position is a transaction id, and a read only goes up
//! to the oldest transaction still running: every change below it is
//! committed or rolled back for good, whatever order transactions commit
//! in. On SQLite writers take turns, so the sequence number is enough.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// How long a consumed change is kept, so that other replicas tailing
/// the same feed a little behind still read it.
const KEEP: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
pub struct ChangeFeed {
    pub table: &'static str,
    pub key: &'static str,
}

/// A position in a feed: every change before it has been read.
pub type Position = i64;

impl ChangeFeed {
    fn position_column(db: &DatabaseConnection) -> &'static str {
        match db.get_database_backend() {
            DbBackend::Postgres => "txid",
            _ => "seq",
        }
    }

    /// The position up to which every change is final.
    pub async fn head(&self, db: &DatabaseConnection) -> Result<Position, DbErr> {
        let sql = match db.get_database_backend() {
            DbBackend::Postgres => "SELECT txid_snapshot_xmin(txid_current_snapshot()) AS head".to_owned(),
            _ => format!("SELECT COALESCE(MAX(seq), 0) + 1 AS head FROM {}", self.table),
        };
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?
            .ok_or_else(|| DbErr::Custom(format!("{}: no head", self.table)))?;
        row.try_get::<i64>("", "head")
    }

    /// Keys changed in `[from, head)`, and the head read.
    pub async fn since(&self, db: &DatabaseConnection, from: Position) -> Result<(BTreeSet<String>, Position), DbErr> {
        let head = self.head(db).await?;
        if head <= from {
            return Ok((BTreeSet::new(), from));
        }
        let backend = db.get_database_backend();
        let at = Self::position_column(db);
        let sql = format!(
            "SELECT DISTINCT {key} AS k FROM {table} WHERE {at} >= $1 AND {at} < $2",
            key = self.key,
            table = self.table
        );
        let sql = if backend == DbBackend::Postgres { sql } else { sql.replace("$1", "?").replace("$2", "?") };
        let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, [from.into(), head.into()])).await?;
        let keys = rows.into_iter().map(|r| r.try_get::<String>("", "k")).collect::<Result<_, _>>()?;
        Ok((keys, head))
    }

    /// Forgets changes before `before`.
    pub async fn purge(&self, db: &DatabaseConnection, before: Position) -> Result<u64, DbErr> {
        let backend = db.get_database_backend();
        let at = Self::position_column(db);
        let placeholder = if backend == DbBackend::Postgres { "$1" } else { "?" };
        let sql = format!("DELETE FROM {} WHERE {at} < {placeholder}", self.table);
        Ok(db.execute_raw(Statement::from_sql_and_values(backend, sql, [before.into()])).await?.rows_affected())
    }
}

/// A reader's place in a feed, which also purges what every reader has
/// had time to read.
#[derive(Debug)]
pub struct Tail {
    feed: ChangeFeed,
    at: Position,
    /// Positions reached, oldest first, to purge once they are old enough.
    reached: VecDeque<(Instant, Position)>,
}

impl Tail {
    /// Starts at the head: what is already committed is the caller's to
    /// load in full after this call.
    pub async fn start(feed: ChangeFeed, db: &DatabaseConnection) -> Result<Self, DbErr> {
        let at = feed.head(db).await?;
        Ok(Self { feed, at, reached: VecDeque::from([(Instant::now(), at)]) })
    }

    pub fn position(&self) -> Position {
        self.at
    }

    /// Keys changed since the last call.
    pub async fn next(&mut self, db: &DatabaseConnection) -> Result<BTreeSet<String>, DbErr> {
        let (keys, head) = self.feed.since(db, self.at).await?;
        if head > self.at {
            self.at = head;
            if self.reached.back().is_none_or(|(at, _)| at.elapsed() > Duration::from_secs(10)) {
                self.reached.push_back((Instant::now(), head));
            }
        }
        let mut purge_before = None;
        while let Some((at, position)) = self.reached.front().copied()
            && at.elapsed() > KEEP
        {
            purge_before = Some(position);
            self.reached.pop_front();
        }
        if let Some(before) = purge_before {
            self.feed.purge(db, before).await?;
        }
        Ok(keys)
    }
}
