use creneau_kit::vocab::Vaccine;

use super::{DirectoryError, Point};

pub const DEFAULT_RADIUS_KM: f64 = 30.0;
pub const MAX_RADIUS_KM: f64 = 200.0;
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, PartialEq)]
pub enum Near {
    Postcode(String),
    Point(Point),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub near: Near,
    pub radius_km: f64,
    pub vaccine: Option<Vaccine>,
    pub limit: u32,
}

impl SearchQuery {
    pub fn parse(
        postcode: Option<&str>,
        point: Option<(f64, f64)>,
        radius_km: f64,
        vaccine: Option<&str>,
        limit: u32,
    ) -> Result<Self, DirectoryError> {
        let invalid = |m: &str| DirectoryError::Invalid(m.to_owned());
        let near = match (postcode.map(str::trim).filter(|p| !p.is_empty()), point) {
            (Some(p), None) => {
                if p.len() != 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid("postcode must be 5 digits"));
                }
                Near::Postcode(p.to_owned())
            }
            (None, Some((lat, lon))) => {
                Near::Point(Point::new(lat, lon).ok_or_else(|| invalid("lat must be -90..90 and lon -180..180"))?)
            }
            (Some(_), Some(_)) => return Err(invalid("give either a postcode or lat/lon, not both")),
            (None, None) => return Err(invalid("a postcode or lat/lon is required")),
        };
        let radius_km = if radius_km == 0.0 { DEFAULT_RADIUS_KM } else { radius_km };
        if !radius_km.is_finite() || !(0.0..=MAX_RADIUS_KM).contains(&radius_km) {
            return Err(DirectoryError::Invalid(format!("radius_km must be between 0 and {MAX_RADIUS_KM}")));
        }
        let vaccine = vaccine
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<Vaccine>().map_err(|e| DirectoryError::Invalid(e.to_string())))
            .transpose()?;
        let limit = match limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => return Err(DirectoryError::Invalid(format!("limit must be 1 to {MAX_LIMIT}"))),
            n => n,
        };
        Ok(Self { near, radius_km, vaccine, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_exactly_one_place_and_sane_bounds() {
        let q = SearchQuery::parse(Some("57000"), None, 0.0, Some("pfizer"), 0).unwrap();
        assert_eq!(q.near, Near::Postcode("57000".into()));
        assert_eq!(q.radius_km, DEFAULT_RADIUS_KM);
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert!(SearchQuery::parse(None, None, 10.0, None, 10).is_err());
        assert!(SearchQuery::parse(Some("570"), None, 10.0, None, 10).is_err());
        assert!(SearchQuery::parse(Some("57000"), Some((49.0, 6.0)), 10.0, None, 10).is_err());
        assert!(SearchQuery::parse(None, Some((95.0, 6.0)), 10.0, None, 10).is_err());
        assert!(SearchQuery::parse(Some("57000"), None, 500.0, None, 10).is_err());
        assert!(SearchQuery::parse(Some("57000"), None, 10.0, Some("sputnik"), 10).is_err());
        assert!(SearchQuery::parse(Some("57000"), None, 10.0, None, 1000).is_err());
    }
}
