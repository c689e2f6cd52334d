//! Layered settings: defaults embedded in the binary, then an optional file,
//! then environment variables (`CRENEAU__DATABASE__URL`). Secrets are
//! `SecretString`s so they never reach a log line or a `Debug` print.

use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where a gRPC or HTTP server listens and how it protects itself.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Requests running longer are answered `DEADLINE_EXCEEDED`.
    pub request_timeout_ms: u64,
    /// In-flight requests across all connections; beyond it requests are shed
    /// at once with `RESOURCE_EXHAUSTED` rather than queued into a timeout.
    pub concurrency_limit: usize,
    /// Time in-flight requests get to finish after SIGTERM.
    pub grace_period_ms: u64,
    /// gRPC services: serve Prometheus `/metrics` on this HTTP port too.
    #[serde(default)]
    pub metrics_port: Option<u16>,
}

impl ServerSettings {
    pub fn local(port: u16) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port,
            request_timeout_ms: 10_000,
            concurrency_limit: 1024,
            grace_period_ms: 20_000,
            metrics_port: None,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn grace_period(&self) -> Duration {
        Duration::from_millis(self.grace_period_ms)
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// What a server needs to protect itself at all.
    pub fn check(&self) -> Result<(), String> {
        if self.request_timeout_ms == 0 || self.concurrency_limit == 0 {
            return Err("server.request_timeout_ms and server.concurrency_limit must be positive".into());
        }
        if self.host.trim().is_empty() {
            return Err("server.host is required".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://path?mode=rwc`.
    pub url: SecretString,
    /// Pool size; by default 1 for SQLite and 20 for PostgreSQL.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// How long a request waits for a pooled connection before it is
    /// answered UNAVAILABLE; shorter than the request timeout. By default
    /// 2 s on PostgreSQL, 8 s on SQLite (one connection, every request
    /// queues on it: a local run, not a rush).
    #[serde(default)]
    pub acquire_timeout_ms: Option<u64>,
    /// PostgreSQL: the longest any one statement may run (0: no limit,
    /// for migrations only).
    #[serde(default = "defaults::statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// PostgreSQL: the longest a statement waits for a row lock.
    #[serde(default = "defaults::lock_timeout_ms")]
    pub lock_timeout_ms: u64,
    /// PostgreSQL: a session idle inside a transaction this long is ended,
    /// releasing its locks (a paused or partitioned replica).
    #[serde(default = "defaults::idle_in_transaction_ms")]
    pub idle_in_transaction_ms: u64,
}

mod defaults {
    pub fn statement_timeout_ms() -> u64 {
        5_000
    }
    pub fn lock_timeout_ms() -> u64 {
        2_000
    }
    pub fn idle_in_transaction_ms() -> u64 {
        10_000
    }
}

/// The database limits, as durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseLimits {
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub idle_in_transaction: Duration,
}

impl DatabaseSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            max_connections: None,
            acquire_timeout_ms: None,
            statement_timeout_ms: defaults::statement_timeout_ms(),
            lock_timeout_ms: defaults::lock_timeout_ms(),
            idle_in_transaction_ms: defaults::idle_in_transaction_ms(),
        }
    }

    /// For schema migrations: no statement timeout (building an index on a
    /// large table takes what it takes), but a lock wait of ten seconds at
    /// most, so that a migration queued behind a long transaction fails
    /// and can be run again instead of holding every request queued
    /// behind its lock.
    pub fn for_migrations(self) -> Self {
        Self { statement_timeout_ms: 0, lock_timeout_ms: 10_000, ..self }
    }

    pub fn limits(&self) -> DatabaseLimits {
        let acquire_ms = self.acquire_timeout_ms.unwrap_or(if self.is_sqlite() { 8_000 } else { 2_000 });
        DatabaseLimits {
            acquire_timeout: Duration::from_millis(acquire_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            lock_timeout: Duration::from_millis(self.lock_timeout_ms),
            idle_in_transaction: Duration::from_millis(self.idle_in_transaction_ms),
        }
    }

    /// The limits must leave a request time to be answered: a pool wait as
    /// long as the request's deadline turns saturation into timeouts.
    pub fn check_against(&self, server: &ServerSettings) -> Result<(), String> {
        let limits = self.limits();
        let all = [limits.acquire_timeout, limits.statement_timeout, limits.lock_timeout, limits.idle_in_transaction];
        if all.iter().any(Duration::is_zero) {
            return Err("database timeouts must be positive".into());
        }
        if limits.acquire_timeout >= server.request_timeout() {
            return Err(format!(
                "database.acquire_timeout_ms ({} ms) must be shorter than server.request_timeout_ms ({})",
                limits.acquire_timeout.as_millis(),
                server.request_timeout_ms
            ));
        }
        if limits.lock_timeout > limits.statement_timeout {
            return Err("database.lock_timeout_ms cannot exceed statement_timeout_ms".into());
        }
        if self.max_connections == Some(0) {
            return Err("database.max_connections must be at least 1".into());
        }
        Ok(())
    }

    fn is_sqlite(&self) -> bool {
        use secrecy::ExposeSecret;
        self.url.expose_secret().starts_with("sqlite:")
    }

    pub fn pool_size(&self) -> u32 {
        // SQLite allows one writer at a time: a single connection turns lock
        // contention into an orderly queue instead of `database is locked`.
        let default = if self.is_sqlite() { 1 } else { 20 };
        self.max_connections.unwrap_or(default)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// An `EnvFilter` directive, e.g. `info,sqlx=warn`.
    pub log_filter: String,
    pub log_format: LogFormat,
    /// OTLP/gRPC collector; spans are exported only when set.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self { log_filter: "info".into(), log_format: LogFormat::Pretty, otlp_endpoint: None }
    }
}

/// Defaults every service shares; a service's own defaults are layered on top.
const COMMON_DEFAULTS: &str = r#"
[server]
host = "0.0.0.0"
port = 50051
request_timeout_ms = 10000
concurrency_limit = 1024
grace_period_ms = 20000

[telemetry]
log_filter = "info"
log_format = "json"
"#;

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(#[from] config::ConfigError);

/// Loads settings: common defaults, then `service_defaults` (TOML), then the
/// file named by `CRENEAU_CONFIG` if set, then `CRENEAU__SECTION__KEY`
/// environment variables.
pub fn load<T: DeserializeOwned>(service_defaults: &str) -> Result<T, SettingsError> {
    load_from(service_defaults, std::env::vars())
}

fn load_from<T: DeserializeOwned>(
    service_defaults: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, SettingsError> {
    let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
    let mut builder = Config::builder()
        .add_source(File::from_str(COMMON_DEFAULTS, FileFormat::Toml))
        .add_source(File::from_str(service_defaults, FileFormat::Toml));
    if let Some(path) = vars.get("CRENEAU_CONFIG") {
        builder = builder.add_source(File::with_name(path).required(true));
    }
    let env = Environment::with_prefix("CRENEAU")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(Some(vars.into_iter().collect()));
    Ok(builder.add_source(env).build()?.try_deserialize()?)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        server: ServerSettings,
        database: DatabaseSettings,
        telemetry: TelemetrySettings,
    }

    const DEFAULTS: &str = r#"
[database]
url = "sqlite://x.db?mode=rwc"
"#;

    #[test]
    fn environment_overrides_defaults() {
        let vars = [
            ("CRENEAU__DATABASE__URL", "postgres://db/creneau"),
            ("CRENEAU__SERVER__PORT", "7000"),
            ("CRENEAU__TELEMETRY__LOG_FORMAT", "pretty"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let s: Sample = load_from(DEFAULTS, vars).unwrap();
        assert_eq!(s.database.url.expose_secret(), "postgres://db/creneau");
        assert_eq!(s.server.port, 7000);
        assert_eq!(s.telemetry.log_format, LogFormat::Pretty);
        assert_eq!(s.server.grace_period_ms, 20000);
        assert_eq!(s.database.pool_size(), 20, "a PostgreSQL URL gets a PostgreSQL-sized pool");
    }

    #[test]
    fn database_limits_leave_a_request_time_to_be_answered() {
        let s: Sample = load_from(DEFAULTS, []).unwrap();
        assert_eq!(s.database.limits().acquire_timeout, Duration::from_secs(8), "SQLite queues on one connection");
        assert_eq!(s.database.check_against(&s.server), Ok(()));
        let postgres = DatabaseSettings::new("postgres://db/creneau");
        assert_eq!(postgres.limits().acquire_timeout, Duration::from_secs(2));
        let vars = [("CRENEAU__DATABASE__ACQUIRE_TIMEOUT_MS", "10000")].map(|(k, v)| (k.to_string(), v.to_string()));
        let slow: Sample = load_from(DEFAULTS, vars).unwrap();
        let refused = slow.database.check_against(&slow.server).unwrap_err();
        assert!(refused.contains("acquire_timeout_ms"), "{refused}");
        let locks = DatabaseSettings { lock_timeout_ms: 9_000, ..postgres };
        assert!(locks.check_against(&s.server).is_err(), "a lock wait longer than any statement");
    }

    #[test]
    fn secrets_do_not_print() {
        let s: Sample = load_from(DEFAULTS, []).unwrap();
        assert!(!format!("{s:?}").contains("x.db"));
    }

    #[test]
    fn a_bad_value_is_a_clear_error() {
        let vars = [("CRENEAU__SERVER__PORT".to_string(), "seventy".to_string())];
        let err = load_from::<Sample>(DEFAULTS, vars).unwrap_err().to_string();
        assert!(err.contains("port"), "{err}");
    }
}
