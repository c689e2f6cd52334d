//! Identifiers of records (slots, holds, centres) as they may arrive from
//! outside: short, printable and of a known alphabet, so that nothing a
//! caller makes up (a NUL byte, a megabyte, a quote) reaches a query.

use std::fmt;

pub const MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be 1 to 64 characters among A-Z, a-z, 0-9, '-', '_', '.' and ':'")]
pub struct InvalidId(pub &'static str);

impl Id {
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, InvalidId> {
        let raw = raw.trim();
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
        if raw.is_empty() || raw.len() > MAX_LEN || !raw.bytes().all(allowed) {
            return Err(InvalidId(field));
        }
        Ok(Self(raw.to_owned()))
    }

    /// An optional identifier: absent when empty.
    pub fn parse_optional(raw: Option<&str>, field: &'static str) -> Result<Option<Self>, InvalidId> {
        match raw.map(str::trim).filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(raw) => Self::parse(raw, field).map(Some),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_a_known_alphabet_and_length() {
        assert_eq!(Id::parse(" 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b ", "slot_id").unwrap().as_str().len(), 36);
        assert!(Id::parse("metz-arsenal", "centre_id").is_ok());
        for bad in ["", "   ", "a\0b", "a b", "a'b", "é", &"x".repeat(65)] {
            assert_eq!(Id::parse(bad, "slot_id"), Err(InvalidId("slot_id")), "{bad:?}");
        }
        assert_eq!(Id::parse_optional(Some(" "), "hold_id"), Ok(None));
        assert!(Id::parse_optional(Some("\0"), "hold_id").is_err());
    }
}
