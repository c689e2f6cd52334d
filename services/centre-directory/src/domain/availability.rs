//! Availability as the directory keeps it: per centre, the places left per
//! day, vaccine and part of the day, and the earliest free slot of each,
//! as slot-inventory streams them. Small enough to keep for every centre:
//! a few dozen bytes per centre and day.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use creneau_kit::vocab::{DoseKind, TimeOfDay, Vaccine};

/// Places left at a centre on a day, for a vaccine, in a part of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayPart {
    /// Local days since 1970-01-01.
    pub day: i32,
    pub vaccine: Vaccine,
    pub time_of_day: TimeOfDay,
    pub places_left: u32,
    /// Unix seconds.
    pub next_slot: i64,
}

/// Which doses a vaccine is given for (every vaccine is given as a first dose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Doses {
    pub second: bool,
    pub booster: bool,
}

/// What availability a search counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Local days, inclusive.
    pub first_day: i32,
    pub last_day: i32,
    /// Unix seconds: slots starting earlier are past.
    pub now: i64,
    pub vaccine: Option<Vaccine>,
    pub dose: Option<DoseKind>,
    pub time_of_day: Option<TimeOfDay>,
}

/// The earliest free slot and the places left that a filter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub next_slot: Option<i64>,
    pub places_left: u32,
}

#[derive(Debug, Default)]
pub struct Availability {
    /// Looked up for every centre a search ranks: a fast hash of the id.
    centres: FxHashMap<String, Box<[DayPart]>>,
    /// By position in `Vaccine::ALL`: asked for every part a search counts.
    doses: [Doses; Vaccine::ALL.len()],
}

impl Availability {
    pub fn clear(&mut self) {
        self.centres.clear();
    }

    /// Replaces all that is known of a centre.
    pub fn set(&mut self, centre: &str, parts: Vec<DayPart>) {
        if parts.is_empty() {
            self.centres.remove(centre);
        } else if let Some(known) = self.centres.get_mut(centre) {
            *known = parts.into_boxed_slice();
        } else {
            self.centres.insert(centre.to_owned(), parts.into_boxed_slice());
        }
    }

    pub fn set_doses(&mut self, doses: HashMap<Vaccine, Doses>) {
        self.doses = Vaccine::ALL.map(|v| doses.get(&v).copied().unwrap_or_default());
    }

    pub fn centres(&self) -> usize {
        self.centres.len()
    }

    fn given_for(&self, vaccine: Vaccine, dose: Option<DoseKind>) -> bool {
        let doses = Vaccine::ALL.iter().position(|v| *v == vaccine).map_or_else(Doses::default, |i| self.doses[i]);
        match dose {
            None | Some(DoseKind::First) => true,
            Some(DoseKind::Second) => doses.second,
            Some(DoseKind::Booster) => doses.booster,
        }
    }

    /// All that is known of a centre.
    pub fn parts(&self, centre: &str) -> &[DayPart] {
        self.centres.get(centre).map_or(&[], |parts| parts)
    }

    pub fn summary(&self, centre: &str, filter: &Filter) -> Summary {
        let Some(parts) = self.centres.get(centre) else { return Summary::default() };
        parts
            .iter()
            .filter(|p| (filter.first_day..=filter.last_day).contains(&p.day))
            .filter(|p| p.next_slot > filter.now)
            .filter(|p| filter.vaccine.is_none_or(|v| v == p.vaccine))
            .filter(|p| filter.time_of_day.is_none_or(|t| t == p.time_of_day))
            .filter(|p| self.given_for(p.vaccine, filter.dose))
            .fold(Summary::default(), |sum, p| Summary {
                next_slot: Some(sum.next_slot.map_or(p.next_slot, |n| n.min(p.next_slot))),
                places_left: sum.places_left.saturating_add(p.places_left),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(day: i32, vaccine: Vaccine, time_of_day: TimeOfDay, places_left: u32, next_slot: i64) -> DayPart {
        DayPart { day, vaccine, time_of_day, places_left, next_slot }
    }

    fn filter(first_day: i32, last_day: i32) -> Filter {
        Filter { first_day, last_day, now: 0, vaccine: None, dose: None, time_of_day: None }
    }

    #[test]
    fn a_summary_counts_what_the_filter_asks_for() {
        let mut a = Availability::default();
        a.set_doses(HashMap::from([
            (Vaccine::Pfizer, Doses { second: true, booster: true }),
            (Vaccine::Janssen, Doses { second: false, booster: false }),
        ]));
        a.set(
            "metz",
            vec![
                part(10, Vaccine::Pfizer, TimeOfDay::Morning, 3, 1000),
                part(10, Vaccine::Janssen, TimeOfDay::Evening, 2, 900),
                part(11, Vaccine::Pfizer, TimeOfDay::Afternoon, 5, 2000),
                part(20, Vaccine::Pfizer, TimeOfDay::Morning, 7, 9000),
            ],
        );
        assert_eq!(a.summary("metz", &filter(10, 16)), Summary { next_slot: Some(900), places_left: 10 });
        assert_eq!(a.summary("metz", &filter(11, 11)).places_left, 5);
        let pfizer = Filter { vaccine: Some(Vaccine::Pfizer), ..filter(10, 20) };
        assert_eq!(a.summary("metz", &pfizer), Summary { next_slot: Some(1000), places_left: 15 });
        let second = Filter { dose: Some(DoseKind::Second), ..filter(10, 10) };
        assert_eq!(a.summary("metz", &second), Summary { next_slot: Some(1000), places_left: 3 });
        let evening = Filter { time_of_day: Some(TimeOfDay::Evening), ..filter(0, 100) };
        assert_eq!(a.summary("metz", &evening).places_left, 2);
        // A part whose earliest slot has started is not counted.
        let later = Filter { now: 1000, ..filter(10, 11) };
        assert_eq!(a.summary("metz", &later), Summary { next_slot: Some(2000), places_left: 5 });
        assert_eq!(a.summary("nancy", &filter(0, 100)), Summary::default());
        a.set("metz", Vec::new());
        assert_eq!((a.centres(), a.summary("metz", &filter(0, 100))), (0, Summary::default()));
    }
}
