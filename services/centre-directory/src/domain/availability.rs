//! Availability as the directory keeps it: per centre, the places left per
//! day, vaccine and part of the day, and the earliest free slot of each,
//! as slot-inventory streams them. Small enough to keep for every centre:
//! twelve bytes per part, a few dozen parts per centre and week.

use std::collections::HashMap;
use std::sync::Arc;

use creneau_kit::vocab::{DoseKind, TimeOfDay, Vaccine};

use super::numbers::Numbers;

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

/// A `DayPart` as kept: 12 bytes instead of 24, for a hundred thousand
/// centres with dozens of parts each. Unix seconds fit 32 bits until 2106
/// and local days 16 bits until 2149.
#[derive(Debug, Clone, Copy)]
struct Packed {
    next_slot: u32,
    places_left: u32,
    day: u16,
    vaccine: Vaccine,
    time_of_day: TimeOfDay,
}

impl Packed {
    fn of(p: &DayPart) -> Option<Self> {
        Some(Self {
            next_slot: u32::try_from(p.next_slot).ok()?,
            places_left: p.places_left,
            day: u16::try_from(p.day).ok()?,
            vaccine: p.vaccine,
            time_of_day: p.time_of_day,
        })
    }

    fn unpack(&self) -> DayPart {
        DayPart {
            day: self.day.into(),
            vaccine: self.vaccine,
            time_of_day: self.time_of_day,
            places_left: self.places_left,
            next_slot: self.next_slot.into(),
        }
    }
}

/// Every centre's parts, by centre number (see `numbers`), each centre's
/// sorted by day.
#[derive(Debug, Default)]
pub struct Availability {
    numbers: Arc<Numbers>,
    parts: Vec<Box<[Packed]>>,
    /// By centre number: the earliest free slot of any part, a bound below
    /// what any filter finds (`u32::MAX`: none).
    earliest: Vec<u32>,
    known: usize,
    /// By position in `Vaccine::ALL`: asked for every part a search counts.
    doses: [Doses; Vaccine::ALL.len()],
}

impl Availability {
    /// Availability indexed by the same numbers as a directory made with `numbers`.
    pub fn new(numbers: Arc<Numbers>) -> Self {
        Self { numbers, ..Self::default() }
    }

    pub(super) fn numbers(&self) -> &Arc<Numbers> {
        &self.numbers
    }

    /// Replaces all that is known of a centre.
    pub fn set(&mut self, centre: &str, parts: Vec<DayPart>) {
        let number = self.numbers.of(centre) as usize;
        if number >= self.parts.len() {
            self.parts.resize_with(number + 1, Default::default);
            self.earliest.resize(number + 1, u32::MAX);
        }
        let mut packed: Vec<Packed> = parts.iter().filter_map(Packed::of).collect();
        packed.sort_unstable_by_key(|p| p.day);
        let was_known = !self.parts[number].is_empty();
        self.known = self.known + usize::from(!packed.is_empty()) - usize::from(was_known);
        self.earliest[number] = packed.iter().map(|p| p.next_slot).min().unwrap_or(u32::MAX);
        self.parts[number] = packed.into_boxed_slice();
    }

    /// Gives back what the arrays grew beyond their length, once a
    /// snapshot is complete.
    pub fn shrink(&mut self) {
        self.parts.shrink_to_fit();
        self.earliest.shrink_to_fit();
    }

    pub fn set_doses(&mut self, doses: HashMap<Vaccine, Doses>) {
        self.doses = Vaccine::ALL.map(|v| doses.get(&v).copied().unwrap_or_default());
    }

    /// Centres with something known.
    pub fn centres(&self) -> usize {
        self.known
    }

    fn given_for(&self, vaccine: Vaccine, dose: Option<DoseKind>) -> bool {
        let doses = Vaccine::ALL.iter().position(|v| *v == vaccine).map_or_else(Doses::default, |i| self.doses[i]);
        match dose {
            None | Some(DoseKind::First) => true,
            Some(DoseKind::Second) => doses.second,
            Some(DoseKind::Booster) => doses.booster,
        }
    }

    fn packed(&self, number: u32) -> &[Packed] {
        self.parts.get(number as usize).map_or(&[], |parts| parts)
    }

    /// All that is known of a centre, by day.
    pub fn parts(&self, centre: &str) -> impl Iterator<Item = DayPart> + '_ {
        let parts = self.numbers.get(centre).map_or(&[][..], |n| self.packed(n));
        parts.iter().map(Packed::unpack)
    }

    pub fn summary(&self, centre: &str, filter: &Filter) -> Summary {
        self.numbers.get(centre).map_or_else(Summary::default, |n| self.summary_of(n, filter))
    }

    /// The earliest free slot any filter could find at centre `number`:
    /// a search by earliest slot weighs centres in this order and stops
    /// once no centre left can rank on the page.
    pub fn earliest_of(&self, number: u32) -> i64 {
        self.earliest.get(number as usize).map_or(i64::MAX, |&n| if n == u32::MAX { i64::MAX } else { n.into() })
    }

    pub fn summary_of(&self, number: u32, filter: &Filter) -> Summary {
        let parts = self.packed(number);
        let from = parts.partition_point(|p| i32::from(p.day) < filter.first_day);
        parts[from..]
            .iter()
            .take_while(|p| i32::from(p.day) <= filter.last_day)
            .filter(|p| i64::from(p.next_slot) > filter.now)
            .filter(|p| filter.vaccine.is_none_or(|v| v == p.vaccine))
            .filter(|p| filter.time_of_day.is_none_or(|t| t == p.time_of_day))
            .filter(|p| self.given_for(p.vaccine, filter.dose))
            .fold(Summary::default(), |sum, p| Summary {
                next_slot: Some(sum.next_slot.map_or(p.next_slot.into(), |n| n.min(p.next_slot.into()))),
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
        assert_eq!(a.parts("metz").map(|p| p.day).collect::<Vec<_>>(), [10, 10, 11, 20]);
        assert_eq!(a.earliest_of(a.numbers.of("metz")), 900);
        a.set("metz", Vec::new());
        assert_eq!((a.centres(), a.summary("metz", &filter(0, 100))), (0, Summary::default()));
        assert_eq!(a.earliest_of(a.numbers.of("metz")), i64::MAX);
    }
}
