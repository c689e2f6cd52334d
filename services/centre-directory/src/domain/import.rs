//! Reading France's open-data file of vaccination sites
//! (`centres-vaccination.csv`: semicolon-separated, one site per line,
//! keyed by `gid`). Each line becomes a centre or a rejection with its
//! reason; nothing here touches storage.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use creneau_kit::vocab::{Vaccine, calendar};

use super::{DirectoryError, NewCentre};

/// Columns the import reads; the file has more.
const REQUIRED: &[&str] = &[
    "gid",
    "nom",
    "adr_num",
    "adr_voie",
    "com_cp",
    "com_insee",
    "com_nom",
    "lat_coor1",
    "long_coor1",
    "lieu_accessibilite",
    "rdv_tel",
    "date_ouverture",
    "date_fermeture",
    "centre_fermeture",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u32,
    pub gid: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub centres: Vec<NewCentre>,
    pub rejected: Vec<Rejected>,
}

fn truthy(value: &str) -> bool {
    matches!(value.trim().to_lowercase().as_str(), "t" | "true" | "oui" | "o" | "1" | "yes")
}

/// The department: from the INSEE code (Corsica's 2A/2B, overseas 97x),
/// else from the postcode.
fn department(insee: &str, postcode: &str) -> String {
    let code = if insee.len() == 5 { insee } else { postcode };
    if code.starts_with("97") || code.starts_with("98") { code[..3].to_owned() } else { code[..2].to_owned() }
}

/// Midnight, Paris time, of a date of the file.
fn paris_midnight(date: NaiveDate) -> Option<DateTime<Utc>> {
    chrono_tz::Europe::Paris.from_local_datetime(&date.and_hms_opt(0, 0, 0)?).earliest().map(|t| t.with_timezone(&Utc))
}

pub fn parse(csv: &[u8], vaccines: &[Vaccine], now: DateTime<Utc>) -> Result<Parsed, DirectoryError> {
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').flexible(true).from_reader(csv);
    let headers = reader.headers().map_err(|e| DirectoryError::Invalid(format!("unreadable header: {e}")))?.clone();
    let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h.trim(), i)).collect();
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| !index.contains_key(c)).collect();
    if !missing.is_empty() {
        return Err(DirectoryError::Invalid(format!("the header lacks columns: {}", missing.join(", "))));
    }
    let vaccine_codes: Vec<String> = vaccines.iter().map(|v| v.code().to_owned()).collect();
    let mut parsed = Parsed::default();
    let mut seen = HashSet::new();
    for (n, record) in reader.records().enumerate() {
        let line = n as u32 + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                parsed.rejected.push(Rejected { line, gid: String::new(), reason: format!("unreadable line: {e}") });
                continue;
            }
        };
        let field = |name: &str| record.get(index[name]).unwrap_or("").trim().to_owned();
        let gid = field("gid");
        let reject = |reason: &str| Rejected { line, gid: gid.clone(), reason: reason.to_owned() };
        if gid.is_empty() || !gid.bytes().all(|b| b.is_ascii_digit()) {
            parsed.rejected.push(reject("gid must be a number"));
            continue;
        }
        if !seen.insert(gid.clone()) {
            parsed.rejected.push(reject("this gid appears earlier in the file"));
            continue;
        }
        if field("nom").is_empty() {
            parsed.rejected.push(reject("missing name (nom)"));
            continue;
        }
        let (lat, lon) = match (
            field("lat_coor1").replace(',', ".").parse::<f64>(),
            field("long_coor1").replace(',', ".").parse::<f64>(),
        ) {
            (Ok(lat), Ok(lon)) if super::Point::new(lat, lon).is_some() && (lat, lon) != (0.0, 0.0) => (lat, lon),
            _ => {
                parsed.rejected.push(reject("bad coordinates (lat_coor1, long_coor1)"));
                continue;
            }
        };
        let postcode = field("com_cp");
        let opening = field("date_ouverture");
        let publish_at = if opening.is_empty() {
            Some(now)
        } else {
            calendar::date(&opening, "date_ouverture").ok().and_then(paris_midnight)
        };
        let Some(publish_at) = publish_at else {
            parsed.rejected.push(reject("bad opening date (date_ouverture)"));
            continue;
        };
        let closing = field("date_fermeture");
        let closes_at = if closing.is_empty() {
            None
        } else {
            // Open through its last day.
            match calendar::date(&closing, "date_fermeture")
                .ok()
                .and_then(|d| d.checked_add_days(chrono::Days::new(1)))
                .and_then(paris_midnight)
            {
                Some(at) => Some(at),
                None => {
                    parsed.rejected.push(reject("bad closing date (date_fermeture)"));
                    continue;
                }
            }
        };
        let closes_at =
            if truthy(&field("centre_fermeture")) { Some(closes_at.unwrap_or(now).min(now)) } else { closes_at };
        let address = format!("{} {}", field("adr_num"), field("adr_voie")).trim().to_owned();
        let insee = field("com_insee");
        let department = if postcode.len() >= 2 { department(&insee, &postcode) } else { String::new() };
        let centre = NewCentre::parse(
            &format!("gid-{gid}"),
            &field("nom"),
            if address.is_empty() { "adresse non renseignée" } else { &address },
            &postcode,
            &field("com_nom"),
            &department,
            lat,
            lon,
            &vaccine_codes,
            truthy(&field("lieu_accessibilite")),
            &field("rdv_tel"),
            &publish_at.to_rfc3339(),
        );
        match centre {
            Ok(mut centre) => {
                centre.insee = (insee.len() == 5).then(|| insee.into());
                centre.closes_at = closes_at;
                parsed.centres.push(centre);
            }
            Err(e) => parsed.rejected.push(reject(&e.to_string())),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../../data/centres-vaccination-sample.csv");

    #[test]
    fn the_sample_file_parses_with_its_bad_rows_reported() {
        let now = Utc::now();
        let parsed = parse(SAMPLE, &[Vaccine::Pfizer], now).unwrap();
        assert_eq!(parsed.centres.len(), 10);
        let reasons: Vec<(u32, &str, &str)> =
            parsed.rejected.iter().map(|r| (r.line, r.gid.as_str(), r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (11, "1010", "missing name (nom)"),
                (12, "1011", "bad coordinates (lat_coor1, long_coor1)"),
                (13, "1012", "bad coordinates (lat_coor1, long_coor1)"),
            ]
        );
        let thionville = parsed.centres.iter().find(|c| c.id.as_str() == "gid-1003").unwrap();
        assert_eq!(&*thionville.name, "Centre de vaccination de Thionville ; salle Jean Burger", "quoted semicolons");
        assert!(!thionville.accessible);
        assert_eq!(&*thionville.department, "57");
        assert_eq!(thionville.insee.as_deref(), Some("57672"));
        // Opened on 18 January 2021 at midnight, Paris time.
        assert_eq!(thionville.publish_at.to_rfc3339(), "2021-01-17T23:00:00+00:00");
        let closed = parsed.centres.iter().find(|c| c.id.as_str() == "gid-1013").unwrap();
        assert!(closed.closes_at.is_some_and(|at| at <= now));
        let paris = parsed.centres.iter().find(|c| c.id.as_str() == "gid-1009").unwrap();
        assert_eq!(paris.closes_at, None);
    }

    #[test]
    fn a_file_without_the_expected_columns_is_refused() {
        assert!(parse(b"a;b;c\n1;2;3\n", &[Vaccine::Pfizer], Utc::now()).is_err());
    }

    #[test]
    fn departments_follow_insee_codes() {
        assert_eq!(department("2A004", "20000"), "2A");
        assert_eq!(department("97411", "97400"), "974");
        assert_eq!(department("", "57000"), "57");
    }
}
