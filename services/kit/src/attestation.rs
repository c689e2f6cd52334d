//! Eligibility attestations: signed by the eligibility service, verified
//! offline by slot-inventory with public keys only, so the booking path never
//! waits on eligibility. Tokens are `v1.<claims>.<signature>`, base64url,
//! Ed25519; each key has an id so keys can rotate.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

const VERSION: &str = "v1";

/// What an attestation asserts: this birth date is eligible for this dose
/// until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "kid")]
    pub key_id: String,
    #[serde(rename = "bd")]
    pub birth_date: NaiveDate,
    pub dose: u32,
    #[serde(rename = "iat")]
    pub issued_at: DateTime<Utc>,
    #[serde(rename = "exp")]
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestationError {
    #[error("the attestation is malformed")]
    Malformed,
    #[error("the attestation was signed with an unknown key")]
    UnknownKey,
    #[error("the attestation signature is invalid")]
    BadSignature,
    #[error("the attestation has expired")]
    Expired,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key must be written `key-id:base64`")]
    Format,
    #[error("key {0:?} is not 32 bytes of base64")]
    Bytes(String),
}

/// Holds the private key; never printed.
pub struct Signer {
    key_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

fn split_key(spec: &str) -> Result<(String, [u8; 32]), KeyError> {
    let (id, b64) = spec.trim().split_once(':').ok_or(KeyError::Format)?;
    if id.is_empty() {
        return Err(KeyError::Format);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| KeyError::Bytes(id.to_owned()))?;
    Ok((id.to_owned(), bytes))
}

impl Signer {
    /// Parses `key-id:base64(32-byte seed)`.
    pub fn parse(spec: &str) -> Result<Self, KeyError> {
        let (key_id, seed) = split_key(spec)?;
        Ok(Self { key_id, key: SigningKey::from_bytes(&seed) })
    }

    /// A fresh random key, in the form `parse` accepts.
    pub fn generate_spec(key_id: &str) -> String {
        let seed: [u8; 32] = rand_seed();
        format!("{key_id}:{}", base64::engine::general_purpose::STANDARD.encode(seed))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, in the form `Verifier::parse` accepts.
    pub fn public_spec(&self) -> String {
        format!(
            "{}:{}",
            self.key_id,
            base64::engine::general_purpose::STANDARD.encode(self.key.verifying_key().to_bytes())
        )
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn sign(&self, birth_date: NaiveDate, dose: u32, issued_at: DateTime<Utc>, ttl: chrono::Duration) -> String {
        let claims = Claims { key_id: self.key_id.clone(), birth_date, dose, issued_at, expires_at: issued_at + ttl };
        let body = B64.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let signed = format!("{VERSION}.{body}");
        let signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", B64.encode(signature.to_bytes()))
    }
}

fn rand_seed() -> [u8; 32] {
    rand::random()
}

/// Public keys by id.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: HashMap<String, VerifyingKey>,
}

impl Verifier {
    /// Parses a comma-separated list of `key-id:base64(32-byte public key)`.
    pub fn parse(specs: &str) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        for spec in specs.split(',').filter(|s| !s.trim().is_empty()) {
            let (id, bytes) = split_key(spec)?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Bytes(id.clone()))?;
            keys.insert(id, key);
        }
        Ok(Self { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key, by id, as the raw public key to publish.
    pub fn keys(&self) -> impl Iterator<Item = (&str, [u8; 32])> {
        self.keys.iter().map(|(id, key)| (id.as_str(), key.to_bytes()))
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, AttestationError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(AttestationError::Malformed)?;
        let (version, body) = signed.split_once('.').ok_or(AttestationError::Malformed)?;
        if version != VERSION {
            return Err(AttestationError::Malformed);
        }
        let claims: Claims = B64
            .decode(body)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(AttestationError::Malformed)?;
        let signature = B64
            .decode(signature)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or(AttestationError::Malformed)?;
        let key = self.keys.get(&claims.key_id).ok_or(AttestationError::UnknownKey)?;
        key.verify(signed.as_bytes(), &signature).map_err(|_| AttestationError::BadSignature)?;
        if claims.expires_at <= now {
            return Err(AttestationError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::parse(&Signer::generate_spec("k1")).unwrap()
    }

    fn birth() -> NaiveDate {
        NaiveDate::from_ymd_opt(1940, 3, 2).unwrap()
    }

    #[test]
    fn a_signed_attestation_verifies_with_the_public_key() {
        let signer = signer();
        let verifier = Verifier::parse(&signer.public_spec()).unwrap();
        let now = Utc::now();
        let token = signer.sign(birth(), 1, now, chrono::Duration::minutes(30));
        let claims = verifier.verify(&token, now).unwrap();
        assert_eq!(claims.birth_date, birth());
        assert_eq!(claims.dose, 1);
    }

    #[test]
    fn tampering_expiry_and_unknown_keys_are_refused() {
        let signer = signer();
        let verifier = Verifier::parse(&signer.public_spec()).unwrap();
        let now = Utc::now();
        let token = signer.sign(birth(), 1, now, chrono::Duration::minutes(30));
        let other = Signer::parse(&Signer::generate_spec("k1")).unwrap();
        let forged = other.sign(birth(), 1, now, chrono::Duration::minutes(30));
        assert_eq!(verifier.verify(&forged, now), Err(AttestationError::BadSignature));
        assert_eq!(verifier.verify(&token, now + chrono::Duration::minutes(31)), Err(AttestationError::Expired));
        let (head, sig) = token.rsplit_once('.').unwrap();
        let claims_swapped = format!(
            "v1.{}.{sig}",
            B64.encode(
                br#"{"kid":"k1","bd":"1930-01-01","dose":1,"iat":"2026-01-01T00:00:00Z","exp":"2099-01-01T00:00:00Z"}"#
            )
        );
        assert_ne!(head, claims_swapped);
        assert_eq!(verifier.verify(&claims_swapped, now), Err(AttestationError::BadSignature));
        assert_eq!(verifier.verify("garbage", now), Err(AttestationError::Malformed));
        let unknown = Signer::parse(&Signer::generate_spec("k2")).unwrap();
        let token = unknown.sign(birth(), 1, now, chrono::Duration::minutes(30));
        assert_eq!(verifier.verify(&token, now), Err(AttestationError::UnknownKey));
    }

    #[test]
    fn keys_rotate_without_refusing_what_the_old_key_signed() {
        let now = Utc::now();
        let old = Signer::parse(&Signer::generate_spec("2026-10")).unwrap();
        let new = Signer::parse(&Signer::generate_spec("2026-11")).unwrap();
        let signed_before = old.sign(birth(), 1, now, chrono::Duration::minutes(30));
        let signed_after = new.sign(birth(), 1, now, chrono::Duration::minutes(30));
        // During the rotation both public keys verify.
        let both = Verifier::parse(&format!("{},{}", new.public_spec(), old.public_spec())).unwrap();
        assert!(both.verify(&signed_before, now).is_ok());
        assert!(both.verify(&signed_after, now).is_ok());
        // Once the old key is retired, what it signed is refused.
        let new_only = Verifier::parse(&new.public_spec()).unwrap();
        assert_eq!(new_only.verify(&signed_before, now), Err(AttestationError::UnknownKey));
        assert!(new_only.verify(&signed_after, now).is_ok());
    }

    #[test]
    fn key_specs_are_checked() {
        assert!(Signer::parse("no-colon").is_err());
        assert!(Signer::parse("k:not-base64!").is_err());
        assert!(Verifier::parse("k:AAAA").is_err());
    }
}
