//! Tickets and passes. A ticket is a citizen's place in line: whoever holds
//! it may ask where they stand, on any replica. A pass, given once a ticket
//! is admitted, opens the booking funnel for a short while and is renewed
//! while used; it names its ticket, so the room can give one pass per
//! ticket and count one booking per pass.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::estimate::Shown;
use super::keys::{Keyring, SealError};

const TICKET: &str = "ticket";
const PASS: &str = "pass";

/// A ticket's id: random, so that nobody guesses another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(#[serde(with = "hex16")] [u8; 16]);

impl TicketId {
    pub fn random() -> Self {
        Self(rand::random())
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Display for TicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

mod hex16 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::TicketId(*bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = String::deserialize(d)?;
        let bad = || serde::de::Error::custom("a ticket id is 32 hexadecimal digits");
        if text.len() != 32 {
            return Err(bad());
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(bytes)
    }
}

/// A place in line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    /// The département the citizen books in (their reach).
    #[serde(rename = "dep")]
    pub department: String,
    /// Order of joining, shared by every replica: the smaller, the earlier.
    #[serde(rename = "ord")]
    pub order: u64,
    /// Joined before this scheduled opening (unix ms): placed by its lottery.
    #[serde(rename = "opn", default, skip_serializing_if = "Option::is_none")]
    pub opening_ms: Option<i64>,
    #[serde(rename = "iat")]
    pub joined_ms: i64,
    #[serde(rename = "exp")]
    pub expires_ms: i64,
    /// What its holder was last told, so that the next answer, on any
    /// replica, does not jump from it.
    #[serde(rename = "shw", default, skip_serializing_if = "Option::is_none")]
    pub shown: Option<Shown>,
}

/// What opens the funnel to one ticket's holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    #[serde(rename = "tid")]
    pub ticket: TicketId,
    #[serde(rename = "dep")]
    pub department: String,
    #[serde(rename = "iat")]
    pub issued_ms: i64,
    #[serde(rename = "exp")]
    pub expires_ms: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("the {0} has expired")]
    Expired(&'static str),
}

/// A token kind: sealed under its name, refused once expired.
pub trait Sealed: Serialize + for<'de> Deserialize<'de> {
    const KIND: &'static str;

    fn expires_ms(&self) -> i64;

    fn seal(&self, keys: &Keyring) -> String {
        keys.seal(Self::KIND, &serde_json::to_vec(self).expect("tokens serialise"))
    }

    fn open(keys: &Keyring, token: &str, now: DateTime<Utc>) -> Result<Self, TokenError> {
        let body = keys.open(Self::KIND, token)?;
        let value: Self = serde_json::from_slice(&body).map_err(|_| SealError::Malformed)?;
        if now.timestamp_millis() >= value.expires_ms() {
            return Err(TokenError::Expired(Self::KIND));
        }
        Ok(value)
    }
}

impl Sealed for Ticket {
    const KIND: &'static str = TICKET;

    fn expires_ms(&self) -> i64 {
        self.expires_ms
    }
}

impl Sealed for Pass {
    const KIND: &'static str = PASS;

    fn expires_ms(&self) -> i64 {
        self.expires_ms
    }
}

impl Pass {
    /// A pass for `ticket`, valid `for_ms` from `now`.
    pub fn issue(ticket: &Ticket, now: DateTime<Utc>, for_ms: i64) -> Self {
        let issued_ms = now.timestamp_millis();
        Self { ticket: ticket.id, department: ticket.department.clone(), issued_ms, expires_ms: issued_ms + for_ms }
    }

    /// The same pass, valid `for_ms` from `now`: renewed while it is used.
    pub fn renewed(&self, now: DateTime<Utc>, for_ms: i64) -> Self {
        Self { expires_ms: now.timestamp_millis() + for_ms, ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keyring {
        Keyring::parse(&Keyring::generate_spec("k1")).unwrap()
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    fn ticket() -> Ticket {
        Ticket {
            id: TicketId::random(),
            department: "57".into(),
            order: 42,
            opening_ms: None,
            joined_ms: 1_000,
            expires_ms: 10_000,
            shown: None,
        }
    }

    #[test]
    fn a_ticket_opens_until_it_expires() {
        let keys = keys();
        let t = ticket();
        let token = t.seal(&keys);
        assert_eq!(Ticket::open(&keys, &token, at(9_999)).unwrap(), t);
        assert_eq!(Ticket::open(&keys, &token, at(10_000)), Err(TokenError::Expired("ticket")));
        assert!(Ticket::open(&self::keys(), &token, at(2_000)).is_err(), "another replica's unknown secret");
    }

    #[test]
    fn a_pass_is_bound_to_its_ticket_and_is_not_a_ticket() {
        let keys = keys();
        let t = ticket();
        let pass = Pass::issue(&t, at(5_000), 600_000);
        let token = pass.seal(&keys);
        let opened = Pass::open(&keys, &token, at(6_000)).unwrap();
        assert_eq!((opened.ticket, opened.expires_ms), (t.id, 605_000));
        assert_eq!(Ticket::open(&keys, &token, at(6_000)), Err(TokenError::Seal(SealError::WrongKind("ticket"))));
        assert_eq!(Pass::open(&keys, &t.seal(&keys), at(6_000)), Err(TokenError::Seal(SealError::WrongKind("pass"))));
        let renewed = opened.renewed(at(600_000), 600_000);
        assert_eq!((renewed.ticket, renewed.issued_ms, renewed.expires_ms), (t.id, 5_000, 1_200_000));
        assert_eq!(Pass::open(&keys, &token, at(605_000)), Err(TokenError::Expired("pass")));
    }

    #[test]
    fn ticket_ids_print_and_parse_as_hex() {
        let id = TicketId([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<TicketId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TicketId>("\"abc\"").is_err());
        assert!(serde_json::from_str::<TicketId>(&format!("\"{}\"", "zz".repeat(16))).is_err());
    }
}
