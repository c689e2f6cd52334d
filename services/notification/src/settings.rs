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
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "defaults::first_retry_ms")]
    pub first_retry_ms: u64,
}

mod defaults {
    use creneau_kit::db::queue::RetryPolicy;

    pub fn max_attempts() -> u32 {
        RetryPolicy::default().max_attempts
    }
    pub fn first_retry_ms() -> u64 {
        RetryPolicy::default().first_delay.as_millis() as u64
    }
}

impl NotificationSettings {
    pub fn retries(&self) -> creneau_kit::db::queue::RetryPolicy {
        creneau_kit::db::queue::RetryPolicy {
            max_attempts: self.max_attempts,
            first_delay: std::time::Duration::from_millis(self.first_retry_ms),
            ..Default::default()
        }
    }
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

    fn validate(&self) -> Result<(), String> {
        self.database.check_against(&self.server)?;
        if self.notification.max_attempts == 0 || self.notification.first_retry_ms == 0 {
            return Err("notification.max_attempts and first_retry_ms must be positive".into());
        }
        if self.notification.maildir.trim().is_empty() {
            return Err("notification.maildir is required".into());
        }
        if let Some(url) = &self.notification.centre_directory_url {
            creneau_kit::client::channel(url).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
