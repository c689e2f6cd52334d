use std::path::PathBuf;
use std::time::Duration;

use creneau_kit::client::GrpcChannel;
use creneau_kit::db::queue::RetryPolicy;
use creneau_kit::entrypoint::ServiceSettings;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub notification: NotificationSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotificationSettings {
    /// Directory messages are delivered to, one file per message.
    pub maildir: String,
    /// The sender address written on messages.
    pub from: String,
    /// Where centre names and addresses are looked up; optional.
    #[serde(default)]
    pub centre_directory_url: Option<String>,
    pub dispatch_interval_ms: u64,
    /// A message that cannot be sent is tried this many times, waiting
    /// longer each time from `first_retry_ms`, then set aside as a dead
    /// letter.
    #[serde(default = "RetryPolicy::default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "RetryPolicy::default_first_retry_ms")]
    pub first_retry_ms: u64,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = r#"
[server]
port = 50054

[database]
url = "sqlite://data/notification.sqlite?mode=rwc"

[notification]
maildir = "data/maildir"
from = "Créneau <ne-pas-repondre@creneau.invalid>"
dispatch_interval_ms = 500
"#;

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    type Config = Config;

    fn parse(self) -> Result<Config, String> {
        self.server.check()?;
        self.database.check_against(&self.server)?;
        let n = self.notification;
        if n.dispatch_interval_ms == 0 {
            return Err("notification.dispatch_interval_ms must be positive".into());
        }
        let retries = RetryPolicy::new(n.max_attempts, n.first_retry_ms).map_err(|e| format!("notification: {e}"))?;
        if n.maildir.trim().is_empty() {
            return Err("notification.maildir is required".into());
        }
        let centre_directory = match n.centre_directory_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Some(creneau_kit::client::channel(url).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Config {
            server: self.server,
            database: self.database,
            maildir: PathBuf::from(n.maildir.trim()),
            from: n.from,
            centre_directory,
            dispatch_interval: Duration::from_millis(n.dispatch_interval_ms),
            retries,
        })
    }
}

/// What notification runs on, every value parsed.
pub struct Config {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub maildir: PathBuf,
    /// The sender written on messages.
    pub from: String,
    /// Centre names and addresses for messages, when set.
    pub centre_directory: Option<GrpcChannel>,
    pub dispatch_interval: Duration,
    pub retries: RetryPolicy,
}
