//! Availability as the directory and the waiting room see it: per centre,
//! the places left per day, vaccine and part of the day, and the earliest
//! slot with room. Holds are not subtracted (they last minutes); slots
//! that have started no longer count.

use chrono::{DateTime, Timelike, Utc};
use creneau_kit::vocab::TimeOfDay;
use creneau_kit::vocab::calendar::{ZONE, local_day};

/// An open slot with room, as storage reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct FreeSlot {
    pub vaccine: String,
    pub starts_at: DateTime<Utc>,
    pub places_left: u32,
}

/// Places left at one centre, on one day, for one vaccine, in one part of
/// the day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DayPart {
    /// Days since 1970-01-01, local.
    pub day: i32,
    pub vaccine: String,
    pub time_of_day: TimeOfDay,
    pub places_left: u32,
    /// Unix seconds.
    pub next_slot: i64,
}

/// A centre's availability from its free slots: slots that start at or
/// before `now` are left out. Sorted, so equal availability compares equal.
pub fn summarise(slots: &[FreeSlot], now: DateTime<Utc>) -> Vec<DayPart> {
    let mut parts: Vec<DayPart> = Vec::new();
    for slot in slots.iter().filter(|s| s.starts_at > now && s.places_left > 0) {
        let local = slot.starts_at.with_timezone(&ZONE);
        let day = local_day(slot.starts_at);
        let time_of_day = TimeOfDay::of_hour(local.hour());
        let next = slot.starts_at.timestamp();
        match parts.iter_mut().find(|p| p.day == day && p.time_of_day == time_of_day && p.vaccine == slot.vaccine) {
            Some(part) => {
                part.places_left = part.places_left.saturating_add(slot.places_left);
                part.next_slot = part.next_slot.min(next);
            }
            None => parts.push(DayPart {
                day,
                vaccine: slot.vaccine.clone(),
                time_of_day,
                places_left: slot.places_left,
                next_slot: next,
            }),
        }
    }
    parts.sort();
    parts
}

/// When a centre's availability changes with no write: as its earliest
/// free slot starts.
pub fn next_expiry(parts: &[DayPart]) -> Option<i64> {
    parts.iter().map(|p| p.next_slot).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(vaccine: &str, at: &str, left: u32) -> FreeSlot {
        FreeSlot { vaccine: vaccine.into(), starts_at: at.parse().unwrap(), places_left: left }
    }

    #[test]
    fn places_add_up_per_day_vaccine_and_part_of_the_day_in_paris_time() {
        let now = "2026-12-01T06:00:00Z".parse().unwrap();
        let slots = [
            slot("pfizer", "2026-12-01T08:00:00Z", 3), // 09:00 Paris, morning
            slot("pfizer", "2026-12-01T10:30:00Z", 2), // 11:30, morning
            slot("pfizer", "2026-12-01T11:00:00Z", 4), // 12:00, afternoon
            slot("moderna", "2026-12-01T08:00:00Z", 1),
            slot("pfizer", "2026-12-01T23:30:00Z", 5), // 00:30 on the 2nd, Paris
            slot("pfizer", "2026-12-01T05:00:00Z", 9), // started
            slot("pfizer", "2026-12-01T09:00:00Z", 0), // full
        ];
        let parts = summarise(&slots, now);
        let day = local_day("2026-12-01T12:00:00Z".parse().unwrap());
        let morning: Vec<_> = parts.iter().filter(|p| p.day == day && p.time_of_day == TimeOfDay::Morning).collect();
        assert_eq!(morning.len(), 2);
        let pfizer = morning.iter().find(|p| p.vaccine == "pfizer").unwrap();
        assert_eq!(
            (pfizer.places_left, pfizer.next_slot),
            (5, "2026-12-01T08:00:00Z".parse::<DateTime<Utc>>().unwrap().timestamp())
        );
        assert!(parts.iter().any(|p| p.day == day && p.time_of_day == TimeOfDay::Afternoon && p.places_left == 4));
        assert!(parts.iter().any(|p| p.day == day + 1 && p.time_of_day == TimeOfDay::Morning && p.places_left == 5));
        assert_eq!(parts.iter().map(|p| p.places_left).sum::<u32>(), 15);
        assert_eq!(next_expiry(&parts), Some(pfizer.next_slot));
    }

    #[test]
    fn a_slot_that_starts_stops_counting() {
        let slots = [slot("pfizer", "2026-12-01T08:00:00Z", 3)];
        assert_eq!(summarise(&slots, "2026-12-01T07:59:59Z".parse().unwrap()).len(), 1);
        assert!(summarise(&slots, "2026-12-01T08:00:00Z".parse().unwrap()).is_empty());
    }
}
