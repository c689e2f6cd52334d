use std::collections::{BTreeSet, HashSet};

use chrono::NaiveDate;

const MAX_CONDITIONS: usize = 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("{0} must be a date written YYYY-MM-DD")]
    BadDate(&'static str),
    #[error("birth_date is out of range")]
    BirthDateOutOfRange,
    #[error("{0} must be between 1900-01-01 and 2199-12-31")]
    OutOfRange(&'static str),
    #[error("unknown condition {0:?}")]
    UnknownCondition(String),
    #[error("unknown profession {0:?}")]
    UnknownProfession(String),
    #[error("at most {MAX_CONDITIONS} conditions")]
    TooManyConditions,
}

/// The codes a profile may use, from the service's catalogue tables.
#[derive(Debug, Clone, Default)]
pub struct Catalogues {
    pub conditions: HashSet<String>,
    pub professions: HashSet<String>,
}

/// What a person declares about themselves, checked against the catalogues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub birth_date: NaiveDate,
    pub conditions: BTreeSet<String>,
    pub profession: Option<String>,
}

/// A date of the campaign's calendar (1900 to 2199): outside it is out
/// of range, so no rule's arithmetic on it can overflow.
pub fn parse_date(raw: &str, field: &'static str) -> Result<NaiveDate, ProfileError> {
    creneau_kit::vocab::calendar::date(raw, field).map_err(|error| match error {
        creneau_kit::vocab::calendar::CalendarError::OutOfRange(field) => ProfileError::OutOfRange(field),
        _ => ProfileError::BadDate(field),
    })
}

impl Profile {
    pub fn parse(
        birth_date: &str,
        conditions: &[String],
        profession: Option<&str>,
        catalogues: &Catalogues,
        today: NaiveDate,
    ) -> Result<Self, ProfileError> {
        let birth_date = parse_date(birth_date, "birth_date")?;
        if birth_date > today || birth_date < NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid") {
            return Err(ProfileError::BirthDateOutOfRange);
        }
        if conditions.len() > MAX_CONDITIONS {
            return Err(ProfileError::TooManyConditions);
        }
        let conditions = conditions
            .iter()
            .map(|c| {
                let code = c.trim().to_ascii_lowercase();
                if catalogues.conditions.contains(&code) {
                    Ok(code)
                } else {
                    Err(ProfileError::UnknownCondition(c.clone()))
                }
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        let profession = profession
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let code = p.to_ascii_lowercase();
                if catalogues.professions.contains(&code) {
                    Ok(code)
                } else {
                    Err(ProfileError::UnknownProfession(p.to_owned()))
                }
            })
            .transpose()?;
        Ok(Self { birth_date, conditions, profession })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogues() -> Catalogues {
        Catalogues {
            conditions: ["dialysis".to_owned()].into(),
            professions: ["health_professional".to_owned()].into(),
        }
    }

    #[test]
    fn codes_must_come_from_the_catalogues() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let ok = Profile::parse("1940-03-02", &["Dialysis".into()], Some("health_professional"), &catalogues(), today)
            .unwrap();
        assert!(ok.conditions.contains("dialysis"));
        assert_eq!(
            Profile::parse("1940-03-02", &["flu".into()], None, &catalogues(), today),
            Err(ProfileError::UnknownCondition("flu".into()))
        );
        assert!(Profile::parse("1940-03-02", &[], Some("pilot"), &catalogues(), today).is_err());
        assert_eq!(
            Profile::parse("02/03/1940", &[], None, &catalogues(), today),
            Err(ProfileError::BadDate("birth_date"))
        );
        assert_eq!(
            Profile::parse("2030-01-01", &[], None, &catalogues(), today),
            Err(ProfileError::BirthDateOutOfRange)
        );
    }
}
