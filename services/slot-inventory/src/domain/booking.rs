use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::BookingError;

/// Letters and digits nobody confuses when reading a reference out on the
/// phone: no I/1, O/0.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A short reference a citizen can read out: `K7PM-Q2XR` (40 bits; unique
/// in the database, regenerated on the rare collision).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference(String);

impl Reference {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let chars: String = (0..8).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        Self(format!("{}-{}", &chars[..4], &chars[4..]))
    }

    /// Accepts any case, with or without the dash.
    pub fn parse(raw: &str) -> Result<Self, BookingError> {
        let compact: String =
            raw.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
        if compact.len() == 8 && compact.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(Self(format!("{}-{}", &compact[..4], &compact[4..])))
        } else {
            Err(BookingError::NotFound)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bearer secret that lets a citizen see or cancel a booking: 256
/// random bits. Only its hash is stored.
pub struct Secret(String);

impl Secret {
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_presented(raw: &str) -> Self {
        Self(raw.trim().to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        let digest = Sha256::digest(self.0.as_bytes());
        SecretHash(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHash(pub String);

impl SecretHash {
    /// Constant time, so response timing reveals nothing about how much of
    /// a guess was right.
    pub fn matches(&self, presented: &Secret) -> bool {
        let presented = presented.hash();
        self.0.as_bytes().ct_eq(presented.0.as_bytes()).into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "cancelled" { BookingStatus::Cancelled } else { BookingStatus::Confirmed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_short_readable_and_parse_back() {
        for _ in 0..100 {
            let r = Reference::generate();
            assert_eq!(r.as_str().len(), 9);
            assert_eq!(Reference::parse(&r.as_str().to_lowercase().replace('-', "")).unwrap(), r);
        }
        assert!(Reference::parse("ABCD-EFG0").is_err());
        assert!(Reference::parse("ABC").is_err());
    }

    #[test]
    fn secrets_match_only_themselves() {
        let secret = Secret::generate();
        assert!(secret.expose().len() >= 43);
        let hash = secret.hash();
        assert!(hash.matches(&Secret::from_presented(secret.expose())));
        assert!(!hash.matches(&Secret::generate()));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}
