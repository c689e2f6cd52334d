use creneau_kit::entrypoint::ServiceSettings;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub centre_directory: CentreDirectorySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CentreDirectorySettings {
    /// Availability comes from here.
    pub slot_inventory_url: String,
    /// Availability older than this is reported (degraded `availability`
    /// health status); searches keep answering, with its age.
    pub availability_stale_after_ms: u64,
}

impl CentreDirectorySettings {
    /// Following `slot_inventory_url`, other values as by default.
    pub fn new(slot_inventory_url: impl Into<String>) -> Self {
        Self { slot_inventory_url: slot_inventory_url.into(), availability_stale_after_ms: 3000 }
    }
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = r#"
[server]
port = 50052

[database]
url = "sqlite://data/centre-directory.sqlite?mode=rwc"

[centre_directory]
slot_inventory_url = ""
availability_stale_after_ms = 3000
"#;

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    type Config = Config;

    fn parse(self) -> Result<Config, String> {
        self.server.check()?;
        self.database.check_against(&self.server)?;
        let url = self.centre_directory.slot_inventory_url.trim();
        if url.is_empty() {
            return Err(
                "centre_directory.slot_inventory_url is required (CRENEAU__CENTRE_DIRECTORY__SLOT_INVENTORY_URL)"
                    .into(),
            );
        }
        let slot_inventory = creneau_kit::client::channel(url).map_err(|e| e.to_string())?;
        let stale_after = std::time::Duration::from_millis(self.centre_directory.availability_stale_after_ms);
        if stale_after < std::time::Duration::from_secs(1) {
            return Err("centre_directory.availability_stale_after_ms must be at least 1000".into());
        }
        Ok(Config { server: self.server, database: self.database, slot_inventory, stale_after })
    }
}

/// What centre-directory runs on, every value parsed.
pub struct Config {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    /// Live availability.
    pub slot_inventory: creneau_kit::client::GrpcChannel,
    pub stale_after: std::time::Duration,
}
