use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A vaccine's dose rules, as stored in the `vaccines` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaccineRules {
    pub code: String,
    pub label: String,
    pub doses: u32,
    /// Days between the first and second dose, inclusive bounds.
    pub min_interval_days: u32,
    pub max_interval_days: u32,
    /// Days a booster waits after the last dose.
    pub booster_min_delay_days: u32,
}

/// Where a second dose may start: `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

impl VaccineRules {
    pub fn needs_second_dose(&self) -> bool {
        self.doses >= 2
    }

    /// Intervals count calendar days, as the campaign's rules do
    /// ("21 days after the first injection"), not hours.
    pub fn second_dose_window(&self, first: DateTime<Utc>) -> Window {
        let day = first.date_naive();
        Window {
            from: midnight(day + Duration::days(i64::from(self.min_interval_days))),
            until: midnight(day + Duration::days(i64::from(self.max_interval_days) + 1)),
        }
    }

    pub fn second_dose_fits(&self, first: DateTime<Utc>, second: DateTime<Utc>) -> bool {
        let window = self.second_dose_window(first);
        second >= window.from && second < window.until
    }

    pub fn booster_allowed(&self, last_dose: NaiveDate, slot_start: DateTime<Utc>) -> bool {
        slot_start >= midnight(last_dose + Duration::days(i64::from(self.booster_min_delay_days)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pfizer() -> VaccineRules {
        VaccineRules {
            code: "pfizer".into(),
            label: "Pfizer-BioNTech".into(),
            doses: 2,
            min_interval_days: 21,
            max_interval_days: 42,
            booster_min_delay_days: 90,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn pfizer_second_dose_is_21_to_42_days_later() {
        let first = at("2026-12-01T16:45:00Z");
        let v = pfizer();
        assert!(!v.second_dose_fits(first, at("2026-12-21T23:59:00Z")));
        assert!(v.second_dose_fits(first, at("2026-12-22T08:00:00Z")));
        assert!(v.second_dose_fits(first, at("2027-01-12T18:00:00Z")));
        assert!(!v.second_dose_fits(first, at("2027-01-13T08:00:00Z")));
    }

    #[test]
    fn boosters_wait_after_the_last_dose() {
        let v = pfizer();
        let last = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert!(!v.booster_allowed(last, at("2026-03-31T12:00:00Z")));
        assert!(v.booster_allowed(last, at("2026-04-01T08:00:00Z")));
    }

    proptest! {
        /// Any second dose fits exactly when its calendar-day distance from
        /// the first is within the interval.
        #[test]
        fn second_dose_fits_iff_the_day_distance_is_in_the_interval(
            min in 0u32..100, extra in 0u32..60,
            first_secs in 1_600_000_000i64..1_900_000_000, offset_secs in -10_000_000i64..20_000_000,
        ) {
            let v = VaccineRules { min_interval_days: min, max_interval_days: min + extra, ..pfizer() };
            let first = DateTime::from_timestamp(first_secs, 0).unwrap();
            let second = first + Duration::seconds(offset_secs);
            let days = (second.date_naive() - first.date_naive()).num_days();
            let expected = days >= i64::from(min) && days <= i64::from(min + extra);
            prop_assert_eq!(v.second_dose_fits(first, second), expected);
            let w = v.second_dose_window(first);
            prop_assert!(w.from < w.until);
        }

        /// A booster is allowed from the delay's day on, and from then on
        /// for ever: never before, never a gap after.
        #[test]
        fn boosters_are_allowed_from_the_delay_on(
            delay in 0u32..400, last_day in 0i64..3000, offset_hours in -2_000i64..20_000,
        ) {
            let v = VaccineRules { booster_min_delay_days: delay, ..pfizer() };
            let last = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + Duration::days(last_day);
            let slot = midnight(last) + Duration::hours(offset_hours);
            let allowed_from = midnight(last + Duration::days(i64::from(delay)));
            prop_assert_eq!(v.booster_allowed(last, slot), slot >= allowed_from);
            prop_assert!(v.booster_allowed(last, slot.max(allowed_from) + Duration::days(1)));
        }
    }
}
