use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

pub use creneau_kit::vocab::Language;

use super::BookingError;

/// How to reach the citizen: at least one of email or phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl Contact {
    pub fn parse(email: Option<&str>, phone: Option<&str>) -> Result<Self, BookingError> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        let phone = phone.map(str::trim).filter(|p| !p.is_empty());
        let email = email
            .map(|e| {
                let valid = e.len() <= 254
                    && !e.chars().any(char::is_whitespace)
                    && e.split_once('@').is_some_and(|(local, domain)| {
                        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
                    });
                if valid { Ok(e.to_owned()) } else { Err(BookingError::Invalid("email is not a valid address".into())) }
            })
            .transpose()?;
        let phone = phone.map(normalise_phone).transpose()?;
        if email.is_none() && phone.is_none() {
            return Err(BookingError::Invalid("an email or a phone number is required".into()));
        }
        Ok(Self { email, phone })
    }
}

/// Accepts French national (`06 12 34 56 78`) and international
/// (`+33 6 12 34 56 78`) forms; stores E.164.
fn normalise_phone(raw: &str) -> Result<String, BookingError> {
    let invalid = || BookingError::Invalid("phone is not a valid phone number".into());
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')')).collect();
    let e164 = if let Some(rest) = compact.strip_prefix('+') {
        format!("+{rest}")
    } else if let Some(rest) = compact.strip_prefix("00") {
        format!("+{rest}")
    } else if compact.len() == 10 && compact.starts_with('0') {
        format!("+33{}", &compact[1..])
    } else {
        return Err(invalid());
    };
    let digits = &e164[1..];
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(e164)
    } else {
        Err(invalid())
    }
}

/// Who is booking. Names and birth date identify the person for the
/// one-active-booking rule.
#[derive(Debug, Clone)]
pub struct Citizen {
    pub first_name: String,
    pub last_name: String,
    pub birth_date: NaiveDate,
    pub contact: Contact,
    pub language: Language,
}

impl Citizen {
    pub fn parse(
        first_name: &str,
        last_name: &str,
        birth_date: &str,
        contact: Contact,
        language: &str,
        today: NaiveDate,
    ) -> Result<Self, BookingError> {
        let name = |value: &str, field: &str| {
            let value = value.trim();
            if value.is_empty() || value.chars().count() > 100 || value.chars().any(char::is_control) {
                Err(BookingError::Invalid(format!("{field} must be 1 to 100 printable characters")))
            } else {
                Ok(value.to_owned())
            }
        };
        let birth_date = creneau_kit::vocab::calendar::date(birth_date, "birth_date")?;
        if birth_date > today {
            return Err(BookingError::Invalid("birth_date is out of range".into()));
        }
        Ok(Self {
            first_name: name(first_name, "first_name")?,
            last_name: name(last_name, "last_name")?,
            birth_date,
            contact,
            language: Language::parse(language),
        })
    }

    pub fn identity(&self) -> IdentityKey {
        IdentityKey::new(&self.first_name, &self.last_name, self.birth_date)
    }
}

/// A hash of the normalised identity, so the uniqueness rule needs no
/// readable copy of names in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKey(String);

impl IdentityKey {
    pub fn new(first_name: &str, last_name: &str, birth_date: NaiveDate) -> Self {
        let canonical = format!("{}|{}|{}", normalise(last_name), normalise(first_name), birth_date);
        let digest = Sha256::digest(canonical.as_bytes());
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `Élodie-Marie  D'Arc` and `elodie marie d arc` are the same person:
/// accents, case, punctuation and spacing do not count.
fn normalise(name: &str) -> String {
    let letters: String = name
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| if c.is_alphanumeric() { c.to_lowercase().next().unwrap_or(c) } else { ' ' })
        .collect();
    letters.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn identity_ignores_accents_case_and_punctuation() {
        let a = IdentityKey::new("Élodie-Marie", "D'Arc", date("1940-03-02"));
        let b = IdentityKey::new(" elodie marie ", "d arc", date("1940-03-02"));
        let c = IdentityKey::new("Elodie", "D'Arc", date("1940-03-02"));
        let d = IdentityKey::new("Élodie-Marie", "D'Arc", date("1940-03-03"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn contact_needs_one_valid_channel() {
        assert!(Contact::parse(None, None).is_err());
        assert!(Contact::parse(Some("  "), Some("")).is_err());
        assert!(Contact::parse(Some("not-an-email"), None).is_err());
        assert_eq!(Contact::parse(None, Some("06 12 34 56 78")).unwrap().phone.as_deref(), Some("+33612345678"));
        assert_eq!(Contact::parse(None, Some("+33 6 12 34 56 78")).unwrap().phone.as_deref(), Some("+33612345678"));
        assert!(Contact::parse(None, Some("12")).is_err());
        assert!(Contact::parse(Some("a@b.fr"), None).is_ok());
    }

    #[test]
    fn citizen_rejects_bad_dates_and_empty_names() {
        let contact = Contact::parse(Some("a@b.fr"), None).unwrap();
        let today = date("2026-11-26");
        assert!(Citizen::parse("A", "B", "1940-02-30", contact.clone(), "fr", today).is_err());
        assert!(Citizen::parse("A", "B", "2027-01-01", contact.clone(), "fr", today).is_err());
        assert!(Citizen::parse("", "B", "1940-01-01", contact.clone(), "fr", today).is_err());
        let c = Citizen::parse(" Anne ", "B", "1940-01-01", contact, "en-GB", today).unwrap();
        assert_eq!(c.first_name, "Anne");
        assert_eq!(c.language, Language::En);
    }
}
