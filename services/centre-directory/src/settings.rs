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

    fn validate(&self) -> Result<(), String> {
        self.database.check_against(&self.server)?;
        if self.centre_directory.slot_inventory_url.trim().is_empty() {
            return Err(
                "centre_directory.slot_inventory_url is required (CRENEAU__CENTRE_DIRECTORY__SLOT_INVENTORY_URL)"
                    .into(),
            );
        }
        creneau_kit::client::channel(&self.centre_directory.slot_inventory_url).map(drop).map_err(|e| e.to_string())
    }
}
