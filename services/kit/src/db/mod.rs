//! Database connection for both supported backends, with the limits every
//! transaction runs under, and the one mapping of database errors to gRPC
//! status ([`status`]).

pub mod changes;
mod failure;
pub mod queue;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    TransactionTrait,
};
use secrecy::ExposeSecret;

pub use failure::{Failure, status};

use crate::DatabaseSettings;

/// The session-wide `statement_timeout` of this process's PostgreSQL
/// connections; a request whose deadline leaves less time than that bounds
/// its transactions by its deadline instead (see [`begin`]).
static STATEMENT_TIMEOUT_MS: AtomicU64 = AtomicU64::new(u64::MAX);

pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(settings, settings.pool_size())).await
}

fn options(settings: &DatabaseSettings, pool_size: u32) -> ConnectOptions {
    let limits = settings.limits();
    // A migrator's unbounded connections leave the serving limit alone.
    if !limits.statement_timeout.is_zero() {
        STATEMENT_TIMEOUT_MS.store(limits.statement_timeout.as_millis() as u64, Ordering::Relaxed);
    }
    let mut options = ConnectOptions::new(settings.url.expose_secret().to_owned());
    options
        .max_connections(pool_size)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        // Shorter than any request's deadline: a saturated pool answers
        // UNAVAILABLE while the caller still has time to go elsewhere.
        .acquire_timeout(limits.acquire_timeout)
        // Pinging on every checkout costs each transaction a round trip;
        // only a connection idle long enough for a proxy, a firewall or a
        // restart to have dropped it is checked first.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        // Every statement, lock wait and open transaction of every
        // connection is bounded: a stuck query, a hot row or a client that
        // went silent mid-transaction (a paused process) cannot hold
        // connections and locks for ever.
        .map_sqlx_postgres_opts(move |opts| {
            opts.options([
                ("statement_timeout", limits.statement_timeout.as_millis().to_string()),
                ("lock_timeout", limits.lock_timeout.as_millis().to_string()),
                ("idle_in_transaction_session_timeout", limits.idle_in_transaction.as_millis().to_string()),
            ])
        })
        .map_sqlx_sqlite_opts(|opts| {
            // WAL lets readers proceed while the single writer commits;
            // NORMAL sync is durable across process crashes in WAL mode.
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    options
}

/// Begins a transaction whose statements respect the current request's
/// deadline: when less time is left than the session's statement timeout,
/// each statement gets at most what is left (PostgreSQL cancels it then,
/// releasing its locks). Outside a request, a plain `BEGIN`.
pub async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres
        && let Some(left) = crate::deadline::remaining()
        && left.as_millis() < u128::from(STATEMENT_TIMEOUT_MS.load(Ordering::Relaxed))
    {
        let ms = left.as_millis().max(1);
        txn.execute_unprepared(&format!("SET LOCAL statement_timeout = {ms}")).await?;
    }
    Ok(txn)
}

/// A SQLite URL for a file, created when missing.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Ready when the database answers and every migration of `service` has
/// been applied: a replica started before its migration Job finished
/// stays out of rotation instead of failing requests. The check has a
/// connection of its own, so a pool saturated by a rush (busy, not broken)
/// does not take the replica out of rotation; once the migrations are
/// found applied they are not read again.
pub fn readiness(settings: &DatabaseSettings, service: &'static str) -> crate::server::ReadinessCheck {
    let mut options = options(settings, 1);
    options.connect_lazy(true).acquire_timeout(Duration::from_secs(2)).test_before_acquire(false);
    let probe = std::sync::Arc::new(tokio::sync::OnceCell::new());
    let migrated = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::sync::Arc::new(move || {
        let (options, probe, migrated) = (options.clone(), probe.clone(), migrated.clone());
        Box::pin(async move {
            let db = probe
                .get_or_try_init(|| Database::connect(options))
                .await
                .map_err(|e| format!("database unreachable: {e}"))?;
            db.execute_unprepared("SELECT 1").await.map_err(|e| format!("database unreachable: {e}"))?;
            if migrated.load(Ordering::Relaxed) {
                return Ok(());
            }
            match creneau_migrations::pending(service, db).await {
                Ok(0) => {
                    migrated.store(true, Ordering::Relaxed);
                    Ok(())
                }
                Ok(n) => Err(format!("{n} migration(s) not applied")),
                Err(e) => Err(format!("cannot read migrations: {e}")),
            }
        })
    })
}

/// A raw statement written once with `?` placeholders, numbered `$n` for
/// PostgreSQL. For the few statements the query builder cannot express
/// portably (subqueries in conditional updates).
pub fn statement(
    backend: sea_orm::DbBackend,
    sql: &str,
    values: impl IntoIterator<Item = sea_orm::Value>,
) -> sea_orm::Statement {
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            let mut numbered = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    numbered.push_str(&format!("${n}"));
                } else {
                    numbered.push(c);
                }
            }
            numbered
        }
        _ => sql.to_owned(),
    };
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// Whether a failed transaction may simply be run again: PostgreSQL
/// aborts one side of a deadlock or serialization conflict.
pub fn is_retryable(err: &DbErr) -> bool {
    Failure::of(err).is_retryable()
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    use super::statement;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let pg =
            statement(DbBackend::Postgres, "UPDATE t SET a = ? WHERE b = ? AND c < ?", [1.into(), 2.into(), 3.into()]);
        assert_eq!(pg.sql, "UPDATE t SET a = $1 WHERE b = $2 AND c < $3");
        let lite = statement(DbBackend::Sqlite, "SELECT ?", [1.into()]);
        assert_eq!(lite.sql, "SELECT ?");
    }
}
