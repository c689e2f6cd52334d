//! Vocabulary every service speaks: vaccine codes, dates, identifiers.
//! Parsed once at each boundary, never passed around as free text.

pub mod calendar;
pub mod id;

pub use id::Id;

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vaccine {
    Pfizer,
    Moderna,
    AstraZeneca,
    Janssen,
    Novavax,
}

impl Vaccine {
    pub const ALL: [Vaccine; 5] =
        [Vaccine::Pfizer, Vaccine::Moderna, Vaccine::AstraZeneca, Vaccine::Janssen, Vaccine::Novavax];

    pub fn code(self) -> &'static str {
        match self {
            Vaccine::Pfizer => "pfizer",
            Vaccine::Moderna => "moderna",
            Vaccine::AstraZeneca => "astrazeneca",
            Vaccine::Janssen => "janssen",
            Vaccine::Novavax => "novavax",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Vaccine::Pfizer => "Pfizer-BioNTech",
            Vaccine::Moderna => "Moderna",
            Vaccine::AstraZeneca => "AstraZeneca",
            Vaccine::Janssen => "Janssen",
            Vaccine::Novavax => "Novavax",
        }
    }
}

impl fmt::Display for Vaccine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown vaccine {0:?} (known: pfizer, moderna, astrazeneca, janssen, novavax)")]
pub struct UnknownVaccine(pub String);

impl FromStr for Vaccine {
    type Err = UnknownVaccine;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vaccine::ALL
            .into_iter()
            .find(|v| v.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownVaccine(s.to_owned()))
    }
}

/// A part of the day, in the centre's local time, to look for slots in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeOfDay {
    /// Before noon.
    Morning,
    /// Noon to 18:00.
    Afternoon,
    /// From 18:00.
    Evening,
}

impl TimeOfDay {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "morning" => Ok(TimeOfDay::Morning),
            "afternoon" => Ok(TimeOfDay::Afternoon),
            "evening" => Ok(TimeOfDay::Evening),
            other => Err(format!("time_of_day must be morning, afternoon or evening, not {other:?}")),
        }
    }

    pub const ALL: [TimeOfDay; 3] = [TimeOfDay::Morning, TimeOfDay::Afternoon, TimeOfDay::Evening];

    pub fn code(self) -> &'static str {
        match self {
            TimeOfDay::Morning => "morning",
            TimeOfDay::Afternoon => "afternoon",
            TimeOfDay::Evening => "evening",
        }
    }

    /// The part of the day a local hour (0–23) falls in.
    pub fn of_hour(hour: u32) -> Self {
        Self::ALL.into_iter().find(|p| hour < p.hours().1).unwrap_or(TimeOfDay::Evening)
    }

    /// Local hours `[from, to)`.
    pub fn hours(self) -> (u32, u32) {
        match self {
            TimeOfDay::Morning => (0, 12),
            TimeOfDay::Afternoon => (12, 18),
            TimeOfDay::Evening => (18, 24),
        }
    }
}

/// Which appointment a citizen looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseKind {
    First,
    /// A second dose booked apart (a two-dose vaccine's).
    Second,
    Booster,
}

impl DoseKind {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "first" => Ok(DoseKind::First),
            "second" => Ok(DoseKind::Second),
            "booster" => Ok(DoseKind::Booster),
            other => Err(format!("dose must be first, second or booster, not {other:?}")),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            DoseKind::First => "first",
            DoseKind::Second => "second",
            DoseKind::Booster => "booster",
        }
    }
}

/// The languages citizens are answered and written to in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Fr,
    En,
}

impl Language {
    /// French unless English is asked for: French is the default of the
    /// campaign, and an unknown tag must not fail a request.
    pub fn parse(tag: &str) -> Self {
        if tag.trim().to_ascii_lowercase().starts_with("en") { Language::En } else { Language::Fr }
    }

    pub fn code(self) -> &'static str {
        match self {
            Language::Fr => "fr",
            Language::En => "en",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_is_an_error() {
        for v in Vaccine::ALL {
            assert_eq!(v.code().parse::<Vaccine>(), Ok(v));
        }
        assert_eq!(" Pfizer ".parse::<Vaccine>(), Ok(Vaccine::Pfizer));
        assert!("sputnik".parse::<Vaccine>().is_err());
    }

    #[test]
    fn languages_default_to_french() {
        assert_eq!(Language::parse("en-GB"), Language::En);
        assert_eq!(Language::parse("de"), Language::Fr);
        assert_eq!(Language::parse(""), Language::Fr);
    }
}
