use chrono::{DateTime, NaiveDate, Utc};
use creneau_kit::vocab::{DoseKind, TimeOfDay, Vaccine};

use super::{DirectoryError, Point};

pub const DEFAULT_RADIUS_KM: f64 = 30.0;
pub const MAX_RADIUS_KM: f64 = 200.0;
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
const MAX_WINDOW_DAYS: i64 = 62;

#[derive(Debug, Clone, PartialEq)]
pub enum Near {
    Postcode(String),
    Point(Point),
    /// INSEE code or name.
    Commune(String),
    Department(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Distance,
    Earliest,
}

/// Availability is counted over `[from, from + days)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub days: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub near: Near,
    pub radius_km: f64,
    pub vaccine: Option<Vaccine>,
    pub accessible: Option<bool>,
    pub sort: Sort,
    pub limit: u32,
    /// 1-based.
    pub page: u32,
    pub window: Window,
    pub dose: Option<DoseKind>,
    pub time_of_day: Option<TimeOfDay>,
}

/// What a search asks, as the transport received it.
#[derive(Debug, Clone, Default)]
pub struct RawSearch<'a> {
    pub postcode: Option<&'a str>,
    pub point: Option<(f64, f64)>,
    pub commune: Option<&'a str>,
    pub department: Option<&'a str>,
    pub radius_km: f64,
    pub vaccine: Option<&'a str>,
    pub accessible: Option<bool>,
    pub sort: &'a str,
    pub limit: u32,
    pub page: u32,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub dose: Option<&'a str>,
    pub time_of_day: Option<&'a str>,
}

fn invalid(message: impl Into<String>) -> DirectoryError {
    DirectoryError::Invalid(message.into())
}

fn date(raw: &str, field: &'static str) -> Result<NaiveDate, DirectoryError> {
    creneau_kit::vocab::calendar::date(raw, field).map_err(|e| invalid(e.to_string()))
}

impl SearchQuery {
    pub fn parse(raw: RawSearch<'_>, now: DateTime<Utc>) -> Result<Self, DirectoryError> {
        let text = |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let places = [
            text(raw.postcode).map(Near::Postcode),
            raw.point
                .map(|(lat, lon)| {
                    Point::new(lat, lon)
                        .map(Near::Point)
                        .ok_or_else(|| invalid("lat must be -90..90 and lon -180..180"))
                })
                .transpose()?,
            text(raw.commune).map(Near::Commune),
            text(raw.department).map(Near::Department),
        ];
        let mut given = places.into_iter().flatten();
        let near = given.next().ok_or_else(|| invalid("a postcode, lat/lon, a commune or a department is required"))?;
        if given.next().is_some() {
            return Err(invalid("give one of postcode, lat/lon, commune or department"));
        }
        match &near {
            Near::Postcode(p) if p.len() != 5 || !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(invalid("postcode must be 5 digits"));
            }
            Near::Department(d) if !(2..=3).contains(&d.len()) || !d.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                return Err(invalid("department must be a department code such as 57, 2A or 974"));
            }
            Near::Commune(c) if c.chars().count() > 100 => return Err(invalid("commune is too long")),
            _ => {}
        }
        let radius_km = if raw.radius_km == 0.0 { DEFAULT_RADIUS_KM } else { raw.radius_km };
        if !radius_km.is_finite() || !(0.0..=MAX_RADIUS_KM).contains(&radius_km) {
            return Err(invalid(format!("radius_km must be between 0 and {MAX_RADIUS_KM}")));
        }
        let vaccine =
            text(raw.vaccine).map(|v| v.parse::<Vaccine>().map_err(|e| invalid(e.to_string()))).transpose()?;
        let sort = match raw.sort.trim() {
            "" | "distance" => Sort::Distance,
            "earliest" => Sort::Earliest,
            other => return Err(invalid(format!("sort must be distance or earliest, not {other:?}"))),
        };
        let limit = match raw.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => return Err(invalid(format!("limit must be 1 to {MAX_LIMIT}"))),
            n => n,
        };
        let page = raw.page.max(1);
        let from = raw.from.map(|f| date(f, "from")).transpose()?;
        let to = raw.to.map(|t| date(t, "to")).transpose()?;
        let start = match from {
            Some(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().max(now),
            None => now,
        };
        let days = match to {
            None => 7,
            Some(to) => {
                let days = (to - start.date_naive()).num_days() + 1;
                if !(1..=MAX_WINDOW_DAYS).contains(&days) {
                    return Err(invalid(format!("to must be on or after from, within {MAX_WINDOW_DAYS} days")));
                }
                days
            }
        };
        let window = Window { from: start, days: days as u32 };
        let dose = text(raw.dose).map(|d| DoseKind::parse(&d).map_err(invalid)).transpose()?;
        let time_of_day = text(raw.time_of_day).map(|t| TimeOfDay::parse(&t).map_err(invalid)).transpose()?;
        Ok(Self { near, radius_km, vaccine, accessible: raw.accessible, sort, limit, page, window, dose, time_of_day })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: RawSearch<'_>) -> Result<SearchQuery, DirectoryError> {
        SearchQuery::parse(raw, "2026-11-26T08:00:00Z".parse().unwrap())
    }

    #[test]
    fn needs_exactly_one_place_and_sane_bounds() {
        let q = parse(RawSearch { postcode: Some("57000"), vaccine: Some("pfizer"), ..Default::default() }).unwrap();
        assert_eq!(q.near, Near::Postcode("57000".into()));
        assert_eq!((q.radius_km, q.limit, q.page, q.sort), (DEFAULT_RADIUS_KM, DEFAULT_LIMIT, 1, Sort::Distance));
        assert_eq!(q.window.days, 7);
        assert!(parse(RawSearch::default()).is_err());
        assert!(parse(RawSearch { postcode: Some("570"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), point: Some((49.0, 6.0)), ..Default::default() }).is_err());
        assert!(parse(RawSearch { commune: Some("Metz"), department: Some("57"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { point: Some((95.0, 6.0)), ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), radius_km: 500.0, ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), vaccine: Some("sputnik"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), limit: 1000, ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), sort: "cheapest", ..Default::default() }).is_err());
        assert!(parse(RawSearch { department: Some("5-7"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { department: Some("57"), dose: Some("third"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { department: Some("57"), time_of_day: Some("night"), ..Default::default() }).is_err());
        let q = parse(RawSearch {
            department: Some("57"),
            dose: Some("second"),
            time_of_day: Some("evening"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((q.dose, q.time_of_day), (Some(DoseKind::Second), Some(TimeOfDay::Evening)));
    }

    #[test]
    fn a_date_range_becomes_the_availability_window() {
        let q = parse(RawSearch {
            department: Some("2A"),
            from: Some("2026-12-01"),
            to: Some("2026-12-03"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.window.from.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(q.window.days, 3);
        assert!(
            parse(RawSearch {
                department: Some("57"),
                from: Some("2026-12-03"),
                to: Some("2026-12-01"),
                ..Default::default()
            })
            .is_err()
        );
        assert!(parse(RawSearch { department: Some("57"), to: Some("2027-12-01"), ..Default::default() }).is_err());
    }
}
