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
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = r#"
[server]
port = 50052

[database]
url = "sqlite://data/centre-directory.sqlite?mode=rwc"

[centre_directory]
slot_inventory_url = ""
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
        Ok(Config { server: self.server, database: self.database, slot_inventory })
    }
}

/// What centre-directory runs on, every value parsed.
pub struct Config {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    /// Live availability.
    pub slot_inventory: creneau_kit::client::GrpcChannel,
}
