//! What a database error means to the caller, decided once for every
//! service: a pool with no free connection or a database that went away is
//! back-pressure to retry elsewhere or later (`UNAVAILABLE`), a conflict
//! between transactions is worth running again (`ABORTED`), a value the
//! database refused is the caller's (`INVALID_ARGUMENT`), and anything else
//! is a fault of ours (`INTERNAL`, logged with its cause, never shown).
//! Constraint violations a service expects (a second booking of a person,
//! a key used twice) are mapped to its domain's errors before they get here.

use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr, sqlx};
use tonic::{Code, Status};

use crate::errors::{self, reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection free before the acquire timeout, or a statement cut
    /// short by its timeout: the database is saturated.
    Busy,
    /// The connection failed or the server is shutting down, restarting
    /// or refusing connections.
    Unreachable,
    /// Aborted to break a deadlock or a serialization conflict: nothing
    /// was committed, and running the transaction again may succeed.
    Conflict,
    /// A row lock was not granted within the lock timeout.
    LockTimeout,
    /// The database refused a value (out of range, bad encoding).
    BadValue,
    Other,
}

impl Failure {
    pub fn of(err: &DbErr) -> Self {
        match err {
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout) => Self::Busy,
            DbErr::ConnectionAcquire(_) => Self::Unreachable,
            DbErr::Conn(runtime) => match sqlx_error(runtime) {
                Some(inner) => Self::of_sqlx(inner).unwrap_or(Self::Unreachable),
                None => Self::Unreachable,
            },
            DbErr::Exec(runtime) | DbErr::Query(runtime) => {
                sqlx_error(runtime).and_then(Self::of_sqlx).unwrap_or(Self::Other)
            }
            _ => Self::Other,
        }
    }

    fn of_sqlx(err: &sqlx::Error) -> Option<Self> {
        match err {
            sqlx::Error::PoolTimedOut => Some(Self::Busy),
            sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::BeginFailed => Some(Self::Unreachable),
            sqlx::Error::Database(db) => Some(match db.code().as_deref() {
                Some(code) => Self::of_code(code),
                None => Self::Other,
            }),
            _ => None,
        }
    }

    /// PostgreSQL SQLSTATE codes, and SQLite's result codes for a busy or
    /// locked database (5, 6 and their extended codes).
    fn of_code(code: &str) -> Self {
        // SQLSTATEs have five characters; SQLite's codes are numbers.
        let class = |prefix: &str| code.len() == 5 && code.starts_with(prefix);
        match code {
            "40001" | "40P01" | "517" => Self::Conflict,
            "55P03" => Self::LockTimeout,
            "57014" | "5" | "6" | "261" | "262" | "773" => Self::Busy,
            "57P01" | "57P02" | "57P03" | "53300" => Self::Unreachable,
            _ if class("08") || class("53") => Self::Unreachable,
            _ if class("22") => Self::BadValue,
            _ => Self::Other,
        }
    }

    /// Whether running the same transaction again is the right answer.
    pub fn is_retryable(self) -> bool {
        self == Self::Conflict
    }

    pub fn is_transient(self) -> bool {
        matches!(self, Self::Busy | Self::Unreachable | Self::Conflict | Self::LockTimeout)
    }
}

fn sqlx_error(err: &RuntimeErr) -> Option<&sqlx::Error> {
    match err {
        RuntimeErr::SqlxError(inner) => Some(inner.deref()),
        _ => None,
    }
}

/// The status a database error answers, for every service.
pub fn status(err: &DbErr) -> Status {
    match Failure::of(err) {
        Failure::Busy => errors::status(Code::Unavailable, reason::UNAVAILABLE, "database busy, retry later"),
        Failure::Unreachable => {
            tracing::warn!(error = %err, "database unreachable");
            errors::status(Code::Unavailable, reason::UNAVAILABLE, "database unavailable, retry later")
        }
        Failure::Conflict | Failure::LockTimeout => {
            errors::status(Code::Aborted, reason::UNAVAILABLE, "conflicting changes, retry")
        }
        Failure::BadValue => {
            // Input should be refused before it reaches the database: this
            // is a check missing at the edge.
            tracing::warn!(error = %err, "the database refused a value");
            errors::invalid_argument("a value is out of range or malformed")
        }
        Failure::Other => errors::internal(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        assert_eq!(Failure::of_code("40P01"), Failure::Conflict);
        assert_eq!(Failure::of_code("40001"), Failure::Conflict);
        assert_eq!(Failure::of_code("55P03"), Failure::LockTimeout);
        assert_eq!(Failure::of_code("57014"), Failure::Busy);
        assert_eq!(Failure::of_code("57P01"), Failure::Unreachable);
        assert_eq!(Failure::of_code("08006"), Failure::Unreachable);
        assert_eq!(Failure::of_code("22021"), Failure::BadValue);
        assert_eq!(Failure::of_code("23505"), Failure::Other, "constraints belong to the domain");
        assert_eq!(Failure::of_code("5"), Failure::Busy, "SQLite's database is locked");
        assert_eq!(Failure::of_code("22"), Failure::Other, "SQLite's 22 is not a data exception");
    }

    #[test]
    fn pool_and_connection_errors_are_unavailable() {
        let busy = DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout);
        assert_eq!(status(&busy).code(), Code::Unavailable);
        let closed = DbErr::Conn(RuntimeErr::SqlxError(std::sync::Arc::new(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )))));
        assert_eq!(status(&closed).code(), Code::Unavailable);
        let lost = DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(sqlx::Error::PoolClosed)));
        assert_eq!(Failure::of(&lost), Failure::Unreachable);
    }

    #[test]
    fn anything_else_is_internal_and_hides_its_cause() {
        let status = status(&DbErr::Custom("relation \"secret_table\" does not exist".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret_table"));
    }
}
