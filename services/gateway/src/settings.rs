use std::time::Duration;

use creneau_kit::entrypoint::ServiceSettings;
use creneau_kit::{ServerSettings, TelemetrySettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The public HTTP listener.
    pub server: ServerSettings,
    pub telemetry: TelemetrySettings,
    pub gateway: GatewaySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    pub eligibility_url: String,
    pub centre_directory_url: String,
    pub slot_inventory_url: String,
    /// Deadline given to each backend call (sent as `grpc-timeout`).
    pub backend_timeout_ms: u64,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
}

impl GatewaySettings {
    pub fn backend_timeout(&self) -> Duration {
        Duration::from_millis(self.backend_timeout_ms)
    }
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = r#"
[server]
port = 8080

[gateway]
eligibility_url = ""
centre_directory_url = ""
slot_inventory_url = ""
backend_timeout_ms = 5000
max_body_bytes = 65536
"#;

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    fn validate(&self) -> Result<(), String> {
        for (name, url) in [
            ("eligibility_url", &self.gateway.eligibility_url),
            ("centre_directory_url", &self.gateway.centre_directory_url),
            ("slot_inventory_url", &self.gateway.slot_inventory_url),
        ] {
            if url.trim().is_empty() {
                return Err(format!("gateway.{name} is required (CRENEAU__GATEWAY__{})", name.to_uppercase()));
            }
            creneau_kit::client::channel(url).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
