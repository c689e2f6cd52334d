use std::time::Duration;

use creneau_kit::client::GrpcChannel;
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

    type Config = Config;

    fn parse(self) -> Result<Config, String> {
        self.server.check()?;
        let g = &self.gateway;
        let channel = |name: &str, url: &str| {
            if url.trim().is_empty() {
                return Err(format!("gateway.{name} is required (CRENEAU__GATEWAY__{})", name.to_uppercase()));
            }
            creneau_kit::client::channel(url.trim()).map_err(|e| e.to_string())
        };
        let backend_timeout = Duration::from_millis(g.backend_timeout_ms);
        if backend_timeout.is_zero() || backend_timeout > self.server.request_timeout() {
            return Err("gateway.backend_timeout_ms must be positive and at most server.request_timeout_ms".into());
        }
        if g.max_body_bytes == 0 {
            return Err("gateway.max_body_bytes must be positive".into());
        }
        Ok(Config {
            eligibility: channel("eligibility_url", &g.eligibility_url)?,
            centre_directory: channel("centre_directory_url", &g.centre_directory_url)?,
            slot_inventory: channel("slot_inventory_url", &g.slot_inventory_url)?,
            backend_timeout,
            max_body_bytes: g.max_body_bytes,
            server: self.server,
        })
    }
}

/// What the gateway runs on, every value parsed.
pub struct Config {
    pub server: ServerSettings,
    pub eligibility: GrpcChannel,
    pub centre_directory: GrpcChannel,
    pub slot_inventory: GrpcChannel,
    /// Every backend call's deadline.
    pub backend_timeout: Duration,
    pub max_body_bytes: usize,
}
