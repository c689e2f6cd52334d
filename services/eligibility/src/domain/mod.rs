//! Eligibility rules and their evaluation: pure, so the rules of each phase
//! of a campaign can be tested without a database.

mod profile;
mod rules;

pub use profile::{Catalogues, Profile, ProfileError, parse_date as profile_date};
pub use rules::{Decision, Rule, evaluate, validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Fr,
    En,
}

impl Language {
    pub fn parse(tag: &str) -> Self {
        if tag.trim().to_ascii_lowercase().starts_with("en") { Language::En } else { Language::Fr }
    }
}
