use std::time::Duration;

use creneau_kit::attestation::Verifier;
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
    #[serde(default = "defaults::relay_interval_ms")]
    pub relay_interval_ms: u64,
    /// How long a hold keeps its place.
    #[serde(default = "defaults::hold_ttl_secs")]
    pub hold_ttl_secs: u32,
    /// How long a booking's idempotency key (and the secret kept with it
    /// for replays) is remembered.
    #[serde(default = "defaults::idempotency_ttl_secs")]
    pub idempotency_ttl_secs: u32,
    /// An event notification refuses is offered this many times, waiting
    /// longer each time from `relay_first_retry_ms`, then set aside as a
    /// dead letter.
    #[serde(default = "RetryPolicy::default_max_attempts")]
    pub relay_max_attempts: u32,
    #[serde(default = "RetryPolicy::default_first_retry_ms")]
    pub relay_first_retry_ms: u64,
}

impl SlotInventorySettings {
    /// Every setting at its default, with the keys attestations are checked
    /// with; relaying off.
    pub fn new(verification_keys: impl Into<String>) -> Self {
        Self {
            verification_keys: verification_keys.into(),
            notification_url: None,
            relay_interval_ms: defaults::relay_interval_ms(),
            hold_ttl_secs: defaults::hold_ttl_secs(),
            idempotency_ttl_secs: defaults::idempotency_ttl_secs(),
            relay_max_attempts: RetryPolicy::default_max_attempts(),
            relay_first_retry_ms: RetryPolicy::default_first_retry_ms(),
        }
    }
}

mod defaults {
    pub fn relay_interval_ms() -> u64 {
        500
    }
    pub fn hold_ttl_secs() -> u32 {
        300
    }
    pub fn idempotency_ttl_secs() -> u32 {
        86_400
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
"#;

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    type Config = Config;

    fn parse(self) -> Result<Config, String> {
        self.server.check()?;
        self.database.check_against(&self.server)?;
        let s = self.slot_inventory;
        let verifier = Verifier::parse(&s.verification_keys).map_err(|e| e.to_string())?;
        if verifier.is_empty() {
            return Err(
                "slot_inventory.verification_keys is required (CRENEAU__SLOT_INVENTORY__VERIFICATION_KEYS)".into()
            );
        }
        if s.relay_interval_ms == 0 {
            return Err("slot_inventory.relay_interval_ms must be positive".into());
        }
        let relay_retries = RetryPolicy::new(s.relay_max_attempts, s.relay_first_retry_ms)
            .map_err(|e| format!("slot_inventory.relay: {e}"))?;
        if s.hold_ttl_secs == 0 || s.idempotency_ttl_secs == 0 {
            return Err("slot_inventory.hold_ttl_secs and idempotency_ttl_secs must be positive".into());
        }
        let notification = match s.notification_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Some(creneau_kit::client::channel(url).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Config {
            server: self.server,
            database: self.database,
            verifier,
            notification,
            relay_interval: Duration::from_millis(s.relay_interval_ms),
            relay_retries,
            lifetimes: Lifetimes {
                hold: chrono::Duration::seconds(i64::from(s.hold_ttl_secs)),
                idempotency_key: chrono::Duration::seconds(i64::from(s.idempotency_ttl_secs)),
            },
        })
    }
}

/// How long holds and idempotency keys live.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub hold: chrono::Duration,
    pub idempotency_key: chrono::Duration,
}

/// What slot-inventory runs on, every value parsed.
pub struct Config {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub verifier: Verifier,
    /// Where outbox events go; none: they are kept, not relayed.
    pub notification: Option<GrpcChannel>,
    pub relay_interval: Duration,
    pub relay_retries: RetryPolicy,
    pub lifetimes: Lifetimes,
}
