use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc, Weekday};

/// Metropolitan France's legal time: CET, and CEST from the last Sunday of
/// March 01:00 UTC to the last Sunday of October 01:00 UTC (EU rule).
/// Written out to avoid a full time-zone database for one zone.
pub fn paris_local(instant: DateTime<Utc>) -> DateTime<FixedOffset> {
    let year = instant.year();
    let summer_start = last_sunday(year, 3).and_hms_opt(1, 0, 0).expect("valid").and_utc();
    let summer_end = last_sunday(year, 10).and_hms_opt(1, 0, 0).expect("valid").and_utc();
    let hours = if instant >= summer_start && instant < summer_end { 2 } else { 1 };
    FixedOffset::east_opt(hours * 3600).expect("valid offset").from_utc_datetime(&instant.naive_utc())
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let first_next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) }
            .expect("valid date");
    let mut day = first_next - Duration::days(1);
    while day.weekday() != Weekday::Sun {
        day -= Duration::days(1);
    }
    day
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn follows_the_european_summer_time_rule() {
        assert_eq!(paris_local(at("2026-01-15T09:00:00Z")).to_rfc3339(), "2026-01-15T10:00:00+01:00");
        assert_eq!(paris_local(at("2026-07-15T09:00:00Z")).to_rfc3339(), "2026-07-15T11:00:00+02:00");
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(paris_local(at("2026-03-29T00:59:00Z")).offset().local_minus_utc(), 3600);
        assert_eq!(paris_local(at("2026-03-29T01:00:00Z")).offset().local_minus_utc(), 7200);
        assert_eq!(paris_local(at("2026-10-25T00:59:00Z")).offset().local_minus_utc(), 7200);
        assert_eq!(paris_local(at("2026-10-25T01:00:00Z")).offset().local_minus_utc(), 3600);
    }
}
