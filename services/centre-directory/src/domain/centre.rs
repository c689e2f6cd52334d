use std::sync::Arc;

use chrono::{DateTime, Utc};
use creneau_kit::vocab::Vaccine;

use super::{DirectoryError, Point};

/// A stable, URL-safe centre id: `metz-centre-1`. Shared, not copied, by
/// the directory's indexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CentreId(Arc<str>);

impl CentreId {
    pub fn parse(raw: &str) -> Result<Self, DirectoryError> {
        let id = raw.trim();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(id.into()))
        } else {
            Err(DirectoryError::Invalid("id must be 1 to 64 characters among a-z, 0-9, '-' and '_'".into()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn shared(&self) -> &Arc<str> {
        &self.0
    }
}

/// A centre as staff publish it. Text is boxed, not `String`: the
/// directory keeps a hundred thousand of these in memory, and a box is a
/// third smaller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCentre {
    pub id: CentreId,
    pub name: Box<str>,
    pub address: Box<str>,
    pub postcode: Box<str>,
    pub city: Box<str>,
    pub department: Box<str>,
    pub location: Point,
    pub vaccines: Box<[Vaccine]>,
    pub accessible: bool,
    pub phone: Box<str>,
    pub publish_at: DateTime<Utc>,
    /// The commune's INSEE code, when known.
    pub insee: Option<Box<str>>,
    /// The centre disappears from citizens' view at this instant.
    pub closes_at: Option<DateTime<Utc>>,
}

fn text(value: &str, field: &str, max: usize) -> Result<Box<str>, DirectoryError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        Err(DirectoryError::Invalid(format!("{field} must be 1 to {max} printable characters")))
    } else {
        Ok(v.into())
    }
}

impl NewCentre {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        id: &str,
        name: &str,
        address: &str,
        postcode: &str,
        city: &str,
        department: &str,
        lat: f64,
        lon: f64,
        vaccines: &[String],
        accessible: bool,
        phone: &str,
        publish_at: &str,
    ) -> Result<Self, DirectoryError> {
        let postcode = postcode.trim();
        if postcode.len() != 5 || !postcode.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DirectoryError::Invalid("postcode must be 5 digits".into()));
        }
        let location = Point::new(lat, lon)
            .ok_or_else(|| DirectoryError::Invalid("lat must be -90..90 and lon -180..180".into()))?;
        let mut parsed = vaccines
            .iter()
            .map(|v| v.parse::<Vaccine>().map_err(|e| DirectoryError::Invalid(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        parsed.sort();
        parsed.dedup();
        if parsed.is_empty() {
            return Err(DirectoryError::Invalid("a centre offers at least one vaccine".into()));
        }
        let publish_at = creneau_kit::vocab::calendar::instant(publish_at, "publish_at")
            .map_err(|e| DirectoryError::Invalid(e.to_string()))?;
        Ok(Self {
            id: CentreId::parse(id)?,
            name: text(name, "name", 200)?,
            address: text(address, "address", 300)?,
            postcode: postcode.into(),
            city: text(city, "city", 100)?,
            department: text(department, "department", 3)?,
            location,
            vaccines: parsed.into(),
            accessible,
            phone: phone.trim().chars().take(30).collect::<String>().into(),
            publish_at,
            insee: None,
            closes_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(id: &str, postcode: &str, lat: f64, vaccines: &[&str]) -> Result<NewCentre, DirectoryError> {
        let vaccines: Vec<String> = vaccines.iter().map(|v| v.to_string()).collect();
        NewCentre::parse(
            id,
            "Centre",
            "1 rue A",
            postcode,
            "Metz",
            "57",
            lat,
            6.17,
            &vaccines,
            true,
            "",
            "2026-01-01T00:00:00Z",
        )
    }

    #[test]
    fn centres_are_checked_field_by_field() {
        let c = parse("metz-1", "57000", 49.1, &["moderna", "pfizer", "pfizer"]).unwrap();
        assert_eq!(*c.vaccines, [Vaccine::Pfizer, Vaccine::Moderna]);
        assert!(parse("Metz 1", "57000", 49.1, &["pfizer"]).is_err());
        assert!(parse("metz-1", "5700", 49.1, &["pfizer"]).is_err());
        assert!(parse("metz-1", "57000", 99.0, &["pfizer"]).is_err());
        assert!(parse("metz-1", "57000", 49.1, &[]).is_err());
        assert!(parse("metz-1", "57000", 49.1, &["sputnik"]).is_err());
    }
}
