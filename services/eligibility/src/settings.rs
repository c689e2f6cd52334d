use creneau_kit::attestation::Signer;
use creneau_kit::entrypoint::ServiceSettings;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
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

    fn validate(&self) -> Result<(), String> {
        self.eligibility
            .signer()
            .map_err(|e| format!("eligibility.signing_key (CRENEAU__ELIGIBILITY__SIGNING_KEY): {e}"))?;
        if self.eligibility.attestation_ttl_secs == 0 {
            return Err("eligibility.attestation_ttl_secs must be positive".into());
        }
        Ok(())
    }
}
