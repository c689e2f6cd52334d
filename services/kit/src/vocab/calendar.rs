//! Dates and instants as every service accepts them: written the standard
//! way and inside the years a vaccination campaign can be about. The bounds
//! keep date arithmetic (intervals, delays, windows of days) far from
//! where it would overflow, so no input can reach a panic.

use chrono::{DateTime, NaiveDate, Utc};

/// Nobody alive was born earlier.
pub const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");
/// Nothing is booked or published later.
pub const LATEST: NaiveDate = NaiveDate::from_ymd_opt(2199, 12, 31).expect("a valid date");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{0} must be a date written YYYY-MM-DD")]
    NotADate(&'static str),
    #[error("{0} must be an RFC 3339 timestamp")]
    NotAnInstant(&'static str),
    #[error("{0} must be between 1900-01-01 and 2199-12-31")]
    OutOfRange(&'static str),
}

/// Where days begin and end for centres and citizens: availability per
/// day, windows of days and parts of the day are counted in this zone.
pub const ZONE: chrono_tz::Tz = chrono_tz::Europe::Paris;

const UNIX_EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");

/// A date as a number of days since 1970-01-01: small, and ordered.
pub fn day_number(date: NaiveDate) -> i32 {
    (date - UNIX_EPOCH).num_days() as i32
}

pub fn date_of_day(day: i32) -> Option<NaiveDate> {
    UNIX_EPOCH.checked_add_signed(chrono::Duration::days(i64::from(day)))
}

/// The local day (in [`ZONE`]) of an instant.
pub fn local_day(at: DateTime<Utc>) -> i32 {
    day_number(at.with_timezone(&ZONE).date_naive())
}

pub fn within_range(date: NaiveDate, field: &'static str) -> Result<NaiveDate, CalendarError> {
    if (EARLIEST..=LATEST).contains(&date) { Ok(date) } else { Err(CalendarError::OutOfRange(field)) }
}

/// A date written `YYYY-MM-DD`, between [`EARLIEST`] and [`LATEST`].
pub fn date(raw: &str, field: &'static str) -> Result<NaiveDate, CalendarError> {
    let raw = raw.trim();
    // chrono reads years of more than four digits and signed years too.
    if raw.len() != 10 {
        return Err(CalendarError::NotADate(field));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| CalendarError::NotADate(field))?;
    within_range(date, field)
}

/// An RFC 3339 instant whose UTC date is between [`EARLIEST`] and [`LATEST`].
pub fn instant(raw: &str, field: &'static str) -> Result<DateTime<Utc>, CalendarError> {
    let at = DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| CalendarError::NotAnInstant(field))?;
    let at = at.with_timezone(&Utc);
    within_range(at.date_naive(), field)?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_within_the_campaign_years() {
        assert_eq!(date(" 2026-12-01 ", "from"), Ok(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()));
        assert_eq!(date("1899-12-31", "from"), Err(CalendarError::OutOfRange("from")));
        assert_eq!(date("9999-12-31", "from"), Err(CalendarError::OutOfRange("from")));
        for bad in ["+262142-12-31", "-0001-01-01", "20261-01-01", "2026-13-01", "2026-1-1x", "", "tomorrow"] {
            assert_eq!(date(bad, "from"), Err(CalendarError::NotADate("from")), "{bad:?}");
        }
    }

    #[test]
    fn instants_are_read_within_the_campaign_years() {
        assert!(instant("2026-12-01T09:00:00+01:00", "starts_at").is_ok());
        assert_eq!(instant("9999-12-31T23:59:59Z", "starts_at"), Err(CalendarError::OutOfRange("starts_at")));
        assert_eq!(instant("2026-12-01", "starts_at"), Err(CalendarError::NotAnInstant("starts_at")));
    }

    #[test]
    fn arithmetic_at_the_bounds_does_not_overflow() {
        // The longest spans any rule adds: a window of days, an interval
        // of weeks, a delay of years.
        let far = LATEST.and_hms_opt(23, 59, 59).unwrap().and_utc();
        assert!(far.checked_add_signed(chrono::Duration::days(3650)).is_some());
        assert!(EARLIEST.checked_sub_signed(chrono::Duration::days(3650)).is_some());
    }
}
