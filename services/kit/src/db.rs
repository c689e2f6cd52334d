//! Database connection for both supported backends.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use secrecy::ExposeSecret;

use crate::DatabaseSettings;

pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.url.expose_secret().to_owned());
    options
        .max_connections(settings.pool_size())
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(30))
        // Pinging on every checkout costs each transaction a round trip;
        // only a connection idle long enough for a proxy, a firewall or a
        // restart to have dropped it is checked first.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            // WAL lets readers proceed while the single writer commits;
            // NORMAL sync is durable across process crashes in WAL mode.
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options).await
}

/// A SQLite URL for a file, created when missing.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Claims up to `limit` rows of `table` matching `ready` for `lease`, so
/// several replicas can work through a queue table (outbox, messages)
/// without taking the same rows. Returns the claimed ids. `ready` is a
/// trusted SQL condition written by the caller, never user input.
pub async fn claim_batch(
    db: &DatabaseConnection,
    table: &str,
    ready: &str,
    lease: Duration,
    limit: u32,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    let now = chrono::Utc::now();
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
    let backend = db.get_database_backend();
    // PostgreSQL: SKIP LOCKED keeps concurrent claimers off each other's
    // rows. SQLite has a single writer, so the plain subquery is enough.
    let (lock, placeholders) = match backend {
        DbBackend::Postgres => ("FOR UPDATE SKIP LOCKED", ["$1", "$2", "$3"]),
        _ => ("", ["?", "?", "?"]),
    };
    let [until_p, now_p, limit_p] = placeholders;
    let sql = format!(
        "UPDATE {table} SET lease_until = {until_p}, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM {table} WHERE ({ready}) \
         AND (lease_until IS NULL OR lease_until < {now_p}) ORDER BY id LIMIT {limit_p} {lock}) \
         RETURNING CAST(id AS TEXT) AS id"
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [until.into(), now.into(), i64::from(limit).into()],
        ))
        .await?;
    rows.iter().map(|row| row.try_get::<String>("", "id")).collect()
}

/// Ready when the database answers and every migration of `service` has
/// been applied: a replica started before its migration Job finished
/// stays out of rotation instead of failing requests.
pub fn readiness(db: DatabaseConnection, service: &'static str) -> crate::server::ReadinessCheck {
    std::sync::Arc::new(move || {
        let db = db.clone();
        Box::pin(async move {
            db.ping().await.map_err(|e| format!("database unreachable: {e}"))?;
            match creneau_migrations::pending(service, &db).await {
                Ok(0) => Ok(()),
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
    let text = err.to_string();
    text.contains("deadlock detected") || text.contains("could not serialize access")
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
