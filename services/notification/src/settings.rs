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
        if self.notification.maildir.trim().is_empty() {
            return Err("notification.maildir is required".into());
        }
        if let Some(url) = &self.notification.centre_directory_url {
            creneau_kit::client::channel(url).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
