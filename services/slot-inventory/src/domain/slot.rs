use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use creneau_kit::vocab::Vaccine;

use super::BookingError;

const MAX_CAPACITY: u32 = 10_000;
const MAX_SLOT_LENGTH_HOURS: i64 = 12;
const MAX_WINDOW_DAYS: u32 = 62;

/// Slot times are whole seconds: databases differ in sub-second precision,
/// and a slot must compare equal to itself after a round trip.
fn instant(raw: &str, field: &'static str) -> Result<DateTime<Utc>, BookingError> {
    let at = creneau_kit::vocab::calendar::instant(raw, field)?;
    Ok(at.with_nanosecond(0).unwrap_or(at))
}

/// A slot a centre publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSlot {
    pub vaccine: Vaccine,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: u32,
}

impl NewSlot {
    pub fn parse(vaccine: &str, starts_at: &str, ends_at: &str, capacity: u32) -> Result<Self, BookingError> {
        let vaccine = vaccine.parse::<Vaccine>().map_err(|e| BookingError::Invalid(e.to_string()))?;
        let starts_at = instant(starts_at, "starts_at")?;
        let ends_at = instant(ends_at, "ends_at")?;
        if ends_at <= starts_at || ends_at - starts_at > Duration::hours(MAX_SLOT_LENGTH_HOURS) {
            return Err(BookingError::Invalid(format!(
                "ends_at must be after starts_at, at most {MAX_SLOT_LENGTH_HOURS} h later"
            )));
        }
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(BookingError::Invalid(format!("capacity must be 1 to {MAX_CAPACITY}")));
        }
        Ok(Self { vaccine, starts_at, ends_at, capacity })
    }
}

/// A slot's places at one moment, and the capacity rule every path that
/// sells, holds, moves or shows a place asks. The database backs it with
/// `CHECK (booked <= capacity)` and the slot's row lock; queries that list
/// candidates filter on `booked < capacity` first, which never keeps out a
/// slot this rule lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Places {
    pub capacity: i64,
    pub booked: i64,
    /// Live holds: places set aside that nobody else may take.
    pub held: i64,
}

impl Places {
    pub fn new(capacity: i32, booked: i32, held: i64) -> Self {
        Self { capacity: i64::from(capacity), booked: i64::from(booked), held }
    }

    /// Whether one more place can be sold or held.
    pub fn has_room(self) -> bool {
        self.booked + self.held < self.capacity
    }

    /// Places nobody has booked or holds.
    pub fn left(self) -> i64 {
        (self.capacity - self.booked - self.held).max(0)
    }
}

/// Whole UTC days to list slots for: `[from, from + days)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl SlotWindow {
    pub fn parse(from: &str, days: u32, today: NaiveDate) -> Result<Self, BookingError> {
        let from = if from.trim().is_empty() { today } else { creneau_kit::vocab::calendar::date(from, "from")? };
        let days = if days == 0 { 7 } else { days };
        if days > MAX_WINDOW_DAYS {
            return Err(BookingError::Invalid(format!("days must be 1 to {MAX_WINDOW_DAYS}")));
        }
        let start = from.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        Ok(Self { start, end: start + Duration::days(i64::from(days)) })
    }

    pub fn from_instant(start: DateTime<Utc>, days: u32) -> Result<Self, BookingError> {
        creneau_kit::vocab::calendar::within_range(start.date_naive(), "from")?;
        let days = if days == 0 { 7 } else { days };
        if days > MAX_WINDOW_DAYS {
            return Err(BookingError::Invalid(format!("days must be 1 to {MAX_WINDOW_DAYS}")));
        }
        Ok(Self { start, end: start + Duration::days(i64::from(days)) })
    }
}

/// The instants of `part` of each day of `window`, in `zone`: what
/// "morning" means across daylight-saving changes.
pub fn day_parts(
    window: SlotWindow,
    part: creneau_kit::vocab::TimeOfDay,
    zone: chrono_tz::Tz,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    use chrono::TimeZone;
    let (from, to) = part.hours();
    let mut out = Vec::new();
    let mut day = window.start.with_timezone(&zone).date_naive();
    while zone
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .is_some_and(|t| t < window.end)
    {
        let at = |hour: u32| {
            let local =
                if hour == 24 { (day + Duration::days(1)).and_hms_opt(0, 0, 0) } else { day.and_hms_opt(hour, 0, 0) };
            local.and_then(|l| zone.from_local_datetime(&l).earliest()).map(|t| t.with_timezone(&Utc))
        };
        if let (Some(a), Some(b)) = (at(from), at(to)) {
            out.push((a.max(window.start), b.min(window.end)));
        }
        day += Duration::days(1);
    }
    out.retain(|(a, b)| a < b);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_need_a_known_vaccine_an_order_and_a_capacity() {
        let ok = NewSlot::parse("pfizer", "2026-12-01T09:00:00Z", "2026-12-01T09:15:00+00:00", 3).unwrap();
        assert_eq!(ok.capacity, 3);
        assert!(NewSlot::parse("sputnik", "2026-12-01T09:00:00Z", "2026-12-01T09:15:00Z", 3).is_err());
        assert!(NewSlot::parse("pfizer", "2026-12-01T09:15:00Z", "2026-12-01T09:00:00Z", 3).is_err());
        assert!(NewSlot::parse("pfizer", "2026-12-01T09:00:00Z", "2026-12-01T09:15:00Z", 0).is_err());
        assert!(NewSlot::parse("pfizer", "tomorrow", "2026-12-01T09:15:00Z", 1).is_err());
    }

    #[test]
    fn mornings_are_local_mornings() {
        let window = SlotWindow::parse("2026-03-28", 2, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()).unwrap();
        let parts = day_parts(window, creneau_kit::vocab::TimeOfDay::Morning, chrono_tz::Europe::Paris);
        let shown: Vec<(String, String)> = parts.iter().map(|(a, b)| (a.to_rfc3339(), b.to_rfc3339())).collect();
        // The window is two UTC days: from 01:00 Paris time on the 28th to
        // 02:00 on the 30th (summer time from the 29th).
        assert_eq!(
            shown,
            [
                ("2026-03-28T00:00:00+00:00".to_string(), "2026-03-28T11:00:00+00:00".to_string()),
                ("2026-03-28T23:00:00+00:00".to_string(), "2026-03-29T10:00:00+00:00".to_string()),
                ("2026-03-29T22:00:00+00:00".to_string(), "2026-03-30T00:00:00+00:00".to_string()),
            ]
        );
    }

    #[test]
    fn a_place_is_free_when_neither_booked_nor_held() {
        assert!(Places::new(8, 7, 0).has_room());
        assert!(!Places::new(8, 7, 1).has_room(), "a live hold keeps the last place");
        assert!(!Places::new(8, 8, 0).has_room());
        assert_eq!(Places::new(8, 5, 1).left(), 2);
        assert_eq!(Places::new(8, 8, 2).left(), 0, "never negative, even over-held");
    }

    #[test]
    fn windows_default_to_a_week_and_are_bounded() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let w = SlotWindow::parse("", 0, today).unwrap();
        assert_eq!(w.end - w.start, Duration::days(7));
        assert!(SlotWindow::parse("2026-13-01", 7, today).is_err());
        assert!(SlotWindow::parse("2026-12-01", 400, today).is_err());
        assert!(SlotWindow::parse("+262143-12-31", 62, today).is_err(), "no overflow, an error");
        assert!(SlotWindow::parse("2199-12-31", 62, today).is_ok());
        let far = NaiveDate::MAX.and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert!(SlotWindow::from_instant(far, 7).is_err());
    }
}
