use creneau_kit::attestation::Verifier;
use creneau_kit::entrypoint::ServiceSettings;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub slot_inventory: SlotInventorySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlotInventorySettings {
    /// Public keys that verify eligibility attestations:
    /// `key-id:base64,key-id:base64`. Public, so not a secret.
    pub verification_keys: String,
    /// Where outbox events are relayed; relaying is off when unset.
    #[serde(default)]
    pub notification_url: Option<String>,
    pub relay_interval_ms: u64,
    /// How long a hold keeps its place.
    pub hold_ttl_secs: u32,
    /// How long a booking's idempotency key (and the secret kept with it
    /// for replays) is remembered.
    pub idempotency_ttl_secs: u32,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = r#"
[server]
port = 50053

[database]
url = "sqlite://data/slot-inventory.sqlite?mode=rwc"

[slot_inventory]
verification_keys = ""
relay_interval_ms = 500
hold_ttl_secs = 300
idempotency_ttl_secs = 86400
"#;

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    fn validate(&self) -> Result<(), String> {
        let keys = Verifier::parse(&self.slot_inventory.verification_keys).map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Err(
                "slot_inventory.verification_keys is required (CRENEAU__SLOT_INVENTORY__VERIFICATION_KEYS)".into()
            );
        }
        if self.slot_inventory.hold_ttl_secs == 0 || self.slot_inventory.idempotency_ttl_secs == 0 {
            return Err("slot_inventory.hold_ttl_secs and idempotency_ttl_secs must be positive".into());
        }
        if let Some(url) = &self.slot_inventory.notification_url {
            creneau_kit::client::channel(url).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
