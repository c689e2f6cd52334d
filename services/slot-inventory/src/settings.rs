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
    /// An event notification refuses is offered this many times, waiting
    /// longer each time from `relay_first_retry_ms`, then set aside as a
    /// dead letter.
    #[serde(default = "defaults::relay_max_attempts")]
    pub relay_max_attempts: u32,
    #[serde(default = "defaults::relay_first_retry_ms")]
    pub relay_first_retry_ms: u64,
}

mod defaults {
    pub fn relay_max_attempts() -> u32 {
        creneau_kit::db::queue::RetryPolicy::default().max_attempts
    }
    pub fn relay_first_retry_ms() -> u64 {
        creneau_kit::db::queue::RetryPolicy::default().first_delay.as_millis() as u64
    }
}

impl SlotInventorySettings {
    pub fn relay_retries(&self) -> creneau_kit::db::queue::RetryPolicy {
        creneau_kit::db::queue::RetryPolicy {
            max_attempts: self.relay_max_attempts,
            first_delay: std::time::Duration::from_millis(self.relay_first_retry_ms),
            ..Default::default()
        }
    }
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
        self.database.check_against(&self.server)?;
        let keys = Verifier::parse(&self.slot_inventory.verification_keys).map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Err(
                "slot_inventory.verification_keys is required (CRENEAU__SLOT_INVENTORY__VERIFICATION_KEYS)".into()
            );
        }
        if self.slot_inventory.relay_max_attempts == 0 || self.slot_inventory.relay_first_retry_ms == 0 {
            return Err("slot_inventory.relay_max_attempts and relay_first_retry_ms must be positive".into());
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
