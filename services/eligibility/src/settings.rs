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

    fn validate(&self) -> Result<(), String> {
        self.database.check_against(&self.server)?;
        self.eligibility
            .signer()
            .map_err(|e| format!("eligibility.signing_key (CRENEAU__ELIGIBILITY__SIGNING_KEY): {e}"))?;
        creneau_kit::attestation::Verifier::parse(&self.eligibility.retired_verification_keys)
            .map_err(|e| format!("eligibility.retired_verification_keys: {e}"))?;
        if self.eligibility.attestation_ttl_secs == 0 {
            return Err("eligibility.attestation_ttl_secs must be positive".into());
        }
        Ok(())
    }
}
