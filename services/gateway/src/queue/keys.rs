//! The keys tickets and passes are sealed with: HMAC-SHA256, shared by the
//! gateway replicas through a Secret. The first key seals; every key
//! listed opens, so a key rotates by being listed second for as long as
//! what it sealed lives.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("queue keys are written `key-id:base64` separated by commas, the sealing key first")]
    Format,
    #[error("queue key {0:?} must be at least 32 bytes of base64")]
    Short(String),
}

/// Why a sealed token is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not a {0}")]
    WrongKind(&'static str),
    #[error("the token was sealed with an unknown key")]
    UnknownKey,
    #[error("the token's seal is invalid")]
    Forged,
}

/// Holds secrets; never printed.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish_non_exhaustive()
    }
}

impl Keyring {
    /// Parses `id:base64,id:base64`, the sealing key first.
    pub fn parse(specs: &str) -> Result<Self, KeyError> {
        let keys = specs
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|spec| {
                let (id, b64) = spec.split_once(':').ok_or(KeyError::Format)?;
                let ok_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !ok_id {
                    return Err(KeyError::Format);
                }
                let key = STANDARD.decode(b64).map_err(|_| KeyError::Short(id.to_owned()))?;
                if key.len() < 32 {
                    return Err(KeyError::Short(id.to_owned()));
                }
                Ok((id.to_owned(), key))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Format);
        }
        Ok(Self { keys })
    }

    /// A fresh key spec for `id`, for local runs and tests.
    pub fn generate_spec(id: &str) -> String {
        let key: [u8; 32] = rand::random();
        format!("{id}:{}", STANDARD.encode(key))
    }

    fn mac(key: &[u8], signed: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(signed.as_bytes());
        mac
    }

    /// `kind.key-id.body.seal`, all URL-safe.
    pub fn seal(&self, kind: &str, body: &[u8]) -> String {
        let (id, key) = &self.keys[0];
        let signed = format!("{kind}.{id}.{}", B64.encode(body));
        let seal = Self::mac(key, &signed).finalize().into_bytes();
        format!("{signed}.{}", B64.encode(seal))
    }

    /// The body of a token sealed as `kind` by one of the keys.
    pub fn open(&self, kind: &'static str, token: &str) -> Result<Vec<u8>, SealError> {
        let (signed, seal) = token.rsplit_once('.').ok_or(SealError::Malformed)?;
        let mut parts = signed.splitn(3, '.');
        let (Some(got_kind), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        if got_kind != kind {
            return Err(SealError::WrongKind(kind));
        }
        let (_, key) = self.keys.iter().find(|(k, _)| k == id).ok_or(SealError::UnknownKey)?;
        let seal = B64.decode(seal).map_err(|_| SealError::Malformed)?;
        // Constant time: a forger learns nothing from how long it took.
        Self::mac(key, signed).verify_slice(&seal).map_err(|_| SealError::Forged)?;
        B64.decode(body).map_err(|_| SealError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_opens_and_a_changed_one_does_not() {
        let keys = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
        let token = keys.seal("ticket", b"position 12");
        assert_eq!(keys.open("ticket", &token).unwrap(), b"position 12");
        assert_eq!(keys.open("pass", &token), Err(SealError::WrongKind("pass")));
        let forged = token.replacen(&B64.encode(b"position 12"), &B64.encode(b"position 1"), 1);
        assert_eq!(keys.open("ticket", &forged), Err(SealError::Forged));
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert!(keys.open("ticket", &flipped).is_err());
        assert_eq!(keys.open("ticket", "nonsense"), Err(SealError::Malformed));
        let other = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
        assert_eq!(other.open("ticket", &token), Err(SealError::Forged));
    }

    #[test]
    fn keys_rotate_without_refusing_what_the_old_key_sealed() {
        let (old, new) = (Keyring::generate_spec("old"), Keyring::generate_spec("new"));
        let before = Keyring::parse(&old).unwrap().seal("pass", b"p");
        let rotating = Keyring::parse(&format!("{new},{old}")).unwrap();
        assert_eq!(rotating.open("pass", &before).unwrap(), b"p");
        assert!(rotating.seal("pass", b"p").starts_with("pass.new."));
        let after = Keyring::parse(&new).unwrap();
        assert_eq!(after.open("pass", &before), Err(SealError::UnknownKey));
    }

    #[test]
    fn key_specs_are_checked_and_never_printed() {
        assert_eq!(Keyring::parse("").unwrap_err(), KeyError::Format);
        assert_eq!(Keyring::parse("nokey").unwrap_err(), KeyError::Format);
        assert_eq!(Keyring::parse("k:c2hvcnQ=").unwrap_err(), KeyError::Short("k".into()));
        let spec = Keyring::generate_spec("k1");
        let printed = format!("{:?}", Keyring::parse(&spec).unwrap());
        assert!(printed.contains("k1") && !printed.contains(spec.split_once(':').unwrap().1));
    }
}
