//! Proof-of-work for joining the line: the server hands out a sealed
//! challenge with a difficulty; the client finds a number whose hash with
//! the challenge starts with that many zero bits (2^difficulty hashes on
//! average) and the server checks it with one hash. A challenge is good
//! once and for two minutes. Difficulty rises by a bit each time the join
//! rate doubles past what the room takes comfortably: a surge of bots pays
//! exponentially more, a citizen on an old phone pays a fraction of a second.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{Keyring, SealError};

const CHALLENGE: &str = "challenge";
/// How long a challenge may be worked on.
pub const CHALLENGE_TTL_MS: i64 = 120_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Challenge {
    #[serde(rename = "n")]
    nonce: [u8; 16],
    #[serde(rename = "d")]
    difficulty: u8,
    #[serde(rename = "iat")]
    issued_ms: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PowError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("the challenge has expired: ask for a new one")]
    Expired,
    #[error("the challenge was already used")]
    Spent,
    #[error("the proof of work does not meet the challenge's difficulty")]
    Insufficient,
}

/// A sealed challenge of `difficulty` bits.
pub fn challenge(keys: &Keyring, difficulty: u8, now: DateTime<Utc>) -> String {
    let c = Challenge { nonce: rand::random(), difficulty, issued_ms: now.timestamp_millis() };
    keys.seal(CHALLENGE, &serde_json::to_vec(&c).expect("challenges serialise"))
}

fn zero_bits(challenge: &str, solution: u64) -> u32 {
    let digest = Sha256::new().chain_update(challenge.as_bytes()).chain_update(solution.to_le_bytes()).finalize();
    let mut bits = 0;
    for byte in digest {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

/// Whether `solution` meets `difficulty` for `challenge`.
pub fn meets(challenge: &str, solution: u64, difficulty: u8) -> bool {
    zero_bits(challenge, solution) >= u32::from(difficulty)
}

/// What a client does: the first number meeting the challenge's difficulty.
pub fn solve(challenge: &str, difficulty: u8) -> u64 {
    (0..).find(|&n| meets(challenge, n, difficulty)).expect("some number meets any difficulty")
}

fn open(keys: &Keyring, challenge: &str) -> Result<Challenge, PowError> {
    let body = keys.open(CHALLENGE, challenge)?;
    Ok(serde_json::from_slice(&body).map_err(|_| SealError::Malformed)?)
}

/// The difficulty a sealed challenge asks for, as clients read it.
pub fn difficulty_of(keys: &Keyring, challenge: &str) -> Result<u8, PowError> {
    Ok(open(keys, challenge)?.difficulty)
}

/// Challenges already used, until they would have expired anyway.
#[derive(Debug, Default)]
pub struct Spent {
    until: HashMap<[u8; 16], i64>,
}

impl Spent {
    /// Checks `solution` against `challenge` and spends the challenge.
    pub fn verify(
        &mut self,
        keys: &Keyring,
        challenge: &str,
        solution: u64,
        now: DateTime<Utc>,
    ) -> Result<(), PowError> {
        let c = open(keys, challenge)?;
        let now = now.timestamp_millis();
        let expires = c.issued_ms + CHALLENGE_TTL_MS;
        if now >= expires || c.issued_ms > now + 5_000 {
            return Err(PowError::Expired);
        }
        if zero_bits(challenge, solution) < u32::from(c.difficulty) {
            return Err(PowError::Insufficient);
        }
        self.until.retain(|_, until| *until > now);
        if self.until.insert(c.nonce, expires).is_some() {
            return Err(PowError::Spent);
        }
        Ok(())
    }
}

/// How hard joining is: `floor` bits while joins come at most at
/// `comfortable` per second, a bit more per doubling beyond, up to
/// `ceiling`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difficulty {
    pub floor: u8,
    pub ceiling: u8,
    pub comfortable: f64,
}

impl Difficulty {
    pub fn at(&self, joins_per_s: f64) -> u8 {
        // A rate that is not a number counts as a calm one.
        let surging = joins_per_s.partial_cmp(&self.comfortable) == Some(std::cmp::Ordering::Greater);
        if !surging || self.comfortable <= 0.0 {
            return self.floor;
        }
        let extra = (joins_per_s / self.comfortable).log2().ceil();
        (f64::from(self.floor) + extra).min(f64::from(self.ceiling)) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn a_solution_is_checked_with_one_hash_and_is_good_once() {
        let keys = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
        let c = challenge(&keys, 10, at(0));
        assert_eq!(difficulty_of(&keys, &c).unwrap(), 10);
        let n = solve(&c, 10);
        assert!(zero_bits(&c, n) >= 10);
        let mut spent = Spent::default();
        let wrong = (0..).find(|&m| zero_bits(&c, m) < 10).unwrap();
        assert_eq!(spent.verify(&keys, &c, wrong, at(1_000)), Err(PowError::Insufficient));
        assert_eq!(spent.verify(&keys, &c, n, at(1_000)), Ok(()));
        assert_eq!(spent.verify(&keys, &c, n, at(2_000)), Err(PowError::Spent));
        let late = challenge(&keys, 1, at(0));
        assert_eq!(spent.verify(&keys, &late, solve(&late, 1), at(CHALLENGE_TTL_MS)), Err(PowError::Expired));
        // A challenge cannot be made easier: its difficulty is sealed.
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let fresh = challenge(&keys, 30, at(0));
        let parts: Vec<&str> = fresh.split('.').collect();
        let body = String::from_utf8(B64.decode(parts[2]).unwrap()).unwrap().replacen("\"d\":30", "\"d\":0", 1);
        let easier = format!("{}.{}.{}.{}", parts[0], parts[1], B64.encode(body), parts[3]);
        assert_eq!(spent.verify(&keys, &easier, 0, at(1_000)), Err(PowError::Seal(SealError::Forged)));
    }

    #[test]
    fn difficulty_rises_a_bit_per_doubling_of_the_join_rate() {
        let d = Difficulty { floor: 8, ceiling: 20, comfortable: 100.0 };
        assert_eq!([d.at(0.0), d.at(100.0), d.at(150.0), d.at(200.0), d.at(800.0)], [8, 8, 9, 9, 11]);
        assert_eq!(d.at(1e9), 20);
        assert_eq!(d.at(f64::NAN), 8);
    }
}
