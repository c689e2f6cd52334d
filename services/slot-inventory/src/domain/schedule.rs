use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use creneau_kit::vocab::Vaccine;
use sha2::{Digest, Sha256};

use super::{BookingError, NewSlot};

const MAX_DAYS: i64 = 366;
const MAX_SLOTS: usize = 50_000;

fn invalid(message: impl Into<String>) -> BookingError {
    BookingError::Invalid(message.into())
}

pub fn parse_zone(raw: &str) -> Result<Tz, BookingError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(chrono_tz::Europe::Paris);
    }
    raw.parse::<Tz>().map_err(|_| invalid(format!("unknown time zone {raw:?}")))
}

pub fn parse_date(raw: &str, field: &'static str) -> Result<NaiveDate, BookingError> {
    Ok(creneau_kit::vocab::calendar::date(raw, field)?)
}

pub fn parse_time(raw: &str, field: &str) -> Result<NaiveTime, BookingError> {
    NaiveTime::parse_from_str(raw.trim(), "%H:%M").map_err(|_| invalid(format!("{field} must be a time written HH:MM")))
}

/// A centre's opening hours for one vaccine over a date range; the slots
/// follow from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub centre_id: String,
    pub vaccine: Vaccine,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub weekdays: BTreeSet<u32>,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
    pub slot_minutes: u32,
    pub lines: u32,
    pub zone: Tz,
}

impl Schedule {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        centre_id: &str,
        vaccine: &str,
        start: &str,
        end: &str,
        weekdays: &[u32],
        opens: &str,
        closes: &str,
        slot_minutes: u32,
        lines: u32,
        zone: &str,
    ) -> Result<Self, BookingError> {
        let centre_id = creneau_kit::vocab::Id::parse(centre_id, "centre_id")?.into_string();
        let vaccine = vaccine.parse::<Vaccine>().map_err(|e| invalid(e.to_string()))?;
        let (start, end) = (parse_date(start, "start_date")?, parse_date(end, "end_date")?);
        if end < start || (end - start).num_days() >= MAX_DAYS {
            return Err(invalid(format!("end_date must be on or after start_date, within {MAX_DAYS} days")));
        }
        if weekdays.is_empty() || weekdays.iter().any(|d| !(1..=7).contains(d)) {
            return Err(invalid("weekdays must be ISO weekdays, 1 (Monday) to 7 (Sunday)"));
        }
        let (opens, closes) = (parse_time(opens, "opens")?, parse_time(closes, "closes")?);
        if closes <= opens {
            return Err(invalid("closes must be after opens"));
        }
        if !(5..=240).contains(&slot_minutes) {
            return Err(invalid("slot_minutes must be 5 to 240"));
        }
        if !(1..=1000).contains(&lines) {
            return Err(invalid("lines must be 1 to 1000"));
        }
        let schedule = Self {
            centre_id: centre_id.to_owned(),
            vaccine,
            start,
            end,
            weekdays: weekdays.iter().copied().collect(),
            opens,
            closes,
            slot_minutes,
            lines,
            zone: parse_zone(zone)?,
        };
        if schedule.slots().len() > MAX_SLOTS {
            return Err(invalid(format!("a schedule generates at most {MAX_SLOTS} slots")));
        }
        Ok(schedule)
    }

    /// The same request always has the same id: creating it again finds it.
    pub fn id(&self) -> String {
        let canonical = format!(
            "{}|{}|{}|{}|{:?}|{}|{}|{}|{}|{}",
            self.centre_id,
            self.vaccine,
            self.start,
            self.end,
            self.weekdays,
            self.opens,
            self.closes,
            self.slot_minutes,
            self.lines,
            self.zone.name()
        );
        let digest = Sha256::digest(canonical.as_bytes());
        format!("sch-{}", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// Every slot, in UTC. A local time that does not exist (the spring
    /// DST gap) yields no slot; an ambiguous one (autumn) its first instant.
    pub fn slots(&self) -> Vec<NewSlot> {
        let step = Duration::minutes(i64::from(self.slot_minutes));
        let mut out = Vec::new();
        let mut day = self.start;
        while day <= self.end {
            if self.weekdays.contains(&day.weekday().number_from_monday()) {
                let mut start = day.and_time(self.opens);
                let close = day.and_time(self.closes);
                while start + step <= close {
                    if let Some(local) = self.zone.from_local_datetime(&start).earliest() {
                        let starts_at = local.with_timezone(&chrono::Utc);
                        out.push(NewSlot {
                            vaccine: self.vaccine,
                            starts_at,
                            ends_at: starts_at + step,
                            capacity: self.lines,
                        });
                    }
                    start += step;
                }
            }
            day += Duration::days(1);
        }
        out
    }
}

/// A local time range on one day, as instants.
pub fn session_bounds(
    date: NaiveDate,
    from: Option<NaiveTime>,
    to: Option<NaiveTime>,
    zone: Tz,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), BookingError> {
    let from = date.and_time(from.unwrap_or(NaiveTime::MIN));
    let to = match to {
        Some(t) => date.and_time(t),
        None => (date + Duration::days(1)).and_time(NaiveTime::MIN),
    };
    if to <= from {
        return Err(invalid("to_time must be after from_time"));
    }
    let instant = |t| zone.from_local_datetime(&t).earliest().map(|l| l.with_timezone(&chrono::Utc));
    match (instant(from), instant(to)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(invalid("the session starts or ends in a daylight-saving gap")),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Timelike, Utc};
    use proptest::prelude::*;

    use super::*;

    fn schedule(start: &str, end: &str, weekdays: &[u32], opens: &str, closes: &str, minutes: u32) -> Schedule {
        Schedule::parse("metz-1", "pfizer", start, end, weekdays, opens, closes, minutes, 3, "Europe/Paris").unwrap()
    }

    #[test]
    fn a_week_of_weekday_mornings() {
        // 2026-11-30 is a Monday.
        let s = schedule("2026-11-30", "2026-12-06", &[1, 2, 3, 4, 5], "09:00", "12:00", 15);
        let slots = s.slots();
        assert_eq!(slots.len(), 5 * 12);
        // 09:00 in Paris in winter is 08:00 UTC.
        assert_eq!(slots[0].starts_at.to_rfc3339(), "2026-11-30T08:00:00+00:00");
        assert!(slots.iter().all(|s| s.capacity == 3));
        assert_eq!(s.id(), schedule("2026-11-30", "2026-12-06", &[1, 2, 3, 4, 5], "09:00", "12:00", 15).id());
        assert_ne!(s.id(), schedule("2026-11-30", "2026-12-06", &[1, 2, 3, 4, 5], "09:00", "12:00", 20).id());
    }

    #[test]
    fn daylight_saving_days_keep_local_hours() {
        // 29 March 2026: 02:00 → 03:00 in Paris.
        let s = schedule("2026-03-28", "2026-03-29", &[6, 7], "01:00", "04:00", 60);
        let hours: Vec<String> = s.slots().iter().map(|s| s.starts_at.to_rfc3339()).collect();
        assert_eq!(
            hours,
            [
                "2026-03-28T00:00:00+00:00",
                "2026-03-28T01:00:00+00:00",
                "2026-03-28T02:00:00+00:00",
                "2026-03-29T00:00:00+00:00",
                /* 02:00 does not exist */ "2026-03-29T01:00:00+00:00",
            ]
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        let p = |start, end, days: &[u32], opens, closes, minutes, lines, zone| {
            Schedule::parse("c", "pfizer", start, end, days, opens, closes, minutes, lines, zone)
        };
        assert!(p("2026-12-02", "2026-12-01", &[1], "09:00", "12:00", 15, 1, "").is_err());
        assert!(p("2026-12-01", "2026-12-02", &[0], "09:00", "12:00", 15, 1, "").is_err());
        assert!(p("2026-12-01", "2026-12-02", &[1], "12:00", "09:00", 15, 1, "").is_err());
        assert!(p("2026-12-01", "2026-12-02", &[1], "09:00", "12:00", 1, 1, "").is_err());
        assert!(p("2026-12-01", "2026-12-02", &[1], "09:00", "12:00", 15, 0, "").is_err());
        assert!(p("2026-12-01", "2026-12-02", &[1], "09:00", "12:00", 15, 1, "Mars/Olympus").is_err());
        assert!(p("2026-12-01", "2028-12-02", &[1], "09:00", "12:00", 15, 1, "").is_err());
    }

    proptest! {
        /// Every generated slot lies within the opening hours, on a chosen
        /// weekday, in the date range; slots never overlap; the count is
        /// what the hours allow.
        #[test]
        fn generated_slots_respect_the_schedule(
            start_day in 0i64..365, days in 0i64..40, weekdays in proptest::collection::btree_set(1u32..=7, 1..=7),
            opens_h in 6u32..12, open_len_h in 1u32..10, minutes in prop::sample::select(vec![5u32, 10, 15, 20, 30, 45, 60]),
        ) {
            let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(start_day);
            let end = start + Duration::days(days);
            let weekdays: Vec<u32> = weekdays.into_iter().collect();
            let opens = format!("{opens_h:02}:00");
            let closes = format!("{:02}:00", opens_h + open_len_h);
            let s = Schedule::parse("c", "moderna", &start.to_string(), &end.to_string(), &weekdays, &opens, &closes, minutes, 2, "Europe/Paris").unwrap();
            let slots = s.slots();
            let per_day = (open_len_h * 60 / minutes) as usize;
            let open_days = (0..=days).filter(|d| weekdays.contains(&(start + Duration::days(*d)).weekday().number_from_monday())).count();
            // Opening hours between 06:00 and 22:00 never meet a DST gap.
            prop_assert_eq!(slots.len(), per_day * open_days);
            for w in slots.windows(2) {
                prop_assert!(w[0].ends_at <= w[1].starts_at);
            }
            for slot in &slots {
                let local = slot.starts_at.with_timezone(&s.zone);
                let local_end = slot.ends_at.with_timezone(&s.zone);
                prop_assert!(local.date_naive() >= start && local.date_naive() <= end);
                prop_assert!(weekdays.contains(&local.weekday().number_from_monday()));
                prop_assert!(local.time() >= s.opens);
                prop_assert!(local_end.time() <= s.closes || local_end.time().num_seconds_from_midnight() == 0);
                prop_assert_eq!(slot.ends_at - slot.starts_at, Duration::minutes(i64::from(minutes)));
                prop_assert!(slot.starts_at > Utc::now() - Duration::days(3650));
            }
        }
    }
}
