//! Eligibility rules and their evaluation: pure, so the rules of each phase
//! of a campaign can be tested without a database.

mod profile;
mod rules;

pub use creneau_kit::vocab::Language;
pub use profile::{Catalogues, Profile, ProfileError, parse_date as profile_date};
pub use rules::{Decision, Rule, evaluate, validate};
