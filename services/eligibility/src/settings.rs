use std::time::Duration;

use creneau_kit::attestation::{Signer, Verifier};
use creneau_kit::entrypoint::ServiceSettings;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
use creneau_proto::eligibility::v1::VerificationKey;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub eligibility: EligibilitySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EligibilitySettings {
    /// `key-id:base64(32-byte Ed25519 seed)`.
    pub signing_key: SecretString,
    /// How long an attestation stays valid for booking.
    pub attestation_ttl_secs: u32,
    /// Public halves of retired signing keys (`key-id:base64,…`), still
    /// published until what they signed has expired: keys rotate without
    /// refusing attestations already handed out.
    #[serde(default)]
    pub retired_verification_keys: String,
    /// How often each replica looks for newly published rules.
    #[serde(default = "default_refresh_ms")]
    pub rules_refresh_ms: u64,
}

fn default_refresh_ms() -> u64 {
    1000
}

impl EligibilitySettings {
    pub fn signer(&self) -> Result<Signer, creneau_kit::attestation::KeyError> {
        Signer::parse(self.signing_key.expose_secret())
    }
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = r#"
[server]
port = 50051

[database]
url = "sqlite://data/eligibility.sqlite?mode=rwc"

[eligibility]
signing_key = ""
attestation_ttl_secs = 1800
"#;

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    type Config = Config;

    fn parse(self) -> Result<Config, String> {
        self.server.check()?;
        self.database.check_against(&self.server)?;
        let e = self.eligibility;
        let signer =
            e.signer().map_err(|e| format!("eligibility.signing_key (CRENEAU__ELIGIBILITY__SIGNING_KEY): {e}"))?;
        let retired = Verifier::parse(&e.retired_verification_keys)
            .map_err(|e| format!("eligibility.retired_verification_keys: {e}"))?;
        if e.attestation_ttl_secs == 0 {
            return Err("eligibility.attestation_ttl_secs must be positive".into());
        }
        Ok(Config {
            server: self.server,
            database: self.database,
            signer,
            retired: retired
                .keys()
                .map(|(id, key)| VerificationKey { key_id: id.to_owned(), public_key: key.to_vec() })
                .collect(),
            attestation_ttl: chrono::Duration::seconds(i64::from(e.attestation_ttl_secs)),
            // Reloading more often than ten times a second only costs reads.
            rules_refresh: Duration::from_millis(e.rules_refresh_ms.max(100)),
        })
    }
}

/// What eligibility runs on, every value parsed.
pub struct Config {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub signer: Signer,
    /// Public keys of signing keys retired but whose attestations may still
    /// be presented.
    pub retired: Vec<VerificationKey>,
    pub attestation_ttl: chrono::Duration,
    pub rules_refresh: Duration,
}
