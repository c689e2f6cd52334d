//! Who goes in, and what a waiting citizen is told. Tickets are numbered in
//! each département's line as they join, and the room keeps a join log in
//! the global order of joining. Each tick the admitter walks the log from
//! the front with the tick's budget (the closed loop's rate): a ticket goes
//! in if its département still has room (places left, plus a margin for
//! those who abandon, less the passes already out), else it waits without
//! holding up the other départements. What every replica needs to answer a
//! status is a small board, per département: places left, how far its line
//! has been admitted, and the next publication if one is known.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::tokens::Ticket;

/// One département on the board.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub places_left: u32,
    /// Tickets of this line up to this number are admitted.
    pub admitted_through: u64,
    /// The next publication of places (unix ms), if one is scheduled.
    pub next_publication_ms: Option<i64>,
}

/// What every replica answers statuses from, refreshed at most a second apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Board {
    pub departments: BTreeMap<String, Department>,
}

/// Where a ticket stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Waiting {
        ahead: u64,
        places_left: u32,
    },
    Admitted,
    /// Nothing left within reach, waiting or admitted.
    SoldOut {
        next_publication_ms: Option<i64>,
    },
}

impl Board {
    pub fn standing(&self, ticket: &Ticket) -> Standing {
        let Some(d) = self.departments.get(&ticket.department) else {
            return Standing::SoldOut { next_publication_ms: None };
        };
        if d.places_left == 0 {
            Standing::SoldOut { next_publication_ms: d.next_publication_ms }
        } else if ticket.order <= d.admitted_through {
            Standing::Admitted
        } else {
            Standing::Waiting { ahead: ticket.order - d.admitted_through - 1, places_left: d.places_left }
        }
    }
}

/// A ticket in the join log: its département and its number in that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub department: String,
    pub order: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admitter {
    /// Admitted beyond the places left, as a share of them, for those who
    /// leave without booking.
    pub margin: f64,
}

impl Admitter {
    fn room(&self, d: &Department, out: u32) -> u32 {
        let allowed = (f64::from(d.places_left) * (1.0 + self.margin)).ceil() as u32;
        allowed.saturating_sub(out)
    }

    /// Admits up to `budget` tickets of `waiting` (the log past every
    /// line's admitted point, in joining order), given the passes `out`
    /// per département (issued and neither used nor expired). Moves the
    /// board's admitted points and returns how many went in.
    pub fn admit(&self, board: &mut Board, waiting: &[Joined], budget: u32, out: &HashMap<String, u32>) -> u32 {
        let mut admitted = 0;
        let mut now_out: HashMap<&str, u32> = HashMap::new();
        // A line is admitted in order: once one of its tickets waits, so do
        // those behind it.
        let mut held: Vec<&str> = Vec::new();
        for j in waiting {
            if admitted == budget {
                break;
            }
            if held.contains(&j.department.as_str()) {
                continue;
            }
            let Some(d) = board.departments.get_mut(&j.department) else { continue };
            if j.order <= d.admitted_through {
                continue;
            }
            let issued =
                now_out.entry(j.department.as_str()).or_insert_with(|| out.get(&j.department).copied().unwrap_or(0));
            if self.room(d, *issued) == 0 || j.order != d.admitted_through + 1 {
                held.push(j.department.as_str());
                continue;
            }
            d.admitted_through = j.order;
            *issued += 1;
            admitted += 1;
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::tokens::TicketId;

    fn board(places: &[(&str, u32)]) -> Board {
        Board {
            departments: places
                .iter()
                .map(|(d, p)| (d.to_string(), Department { places_left: *p, ..Default::default() }))
                .collect(),
        }
    }

    /// `pattern` in joining order: each letter a département's next ticket.
    fn log(pattern: &str) -> Vec<Joined> {
        let mut counts: HashMap<char, u64> = HashMap::new();
        pattern
            .chars()
            .map(|c| {
                let n = counts.entry(c).or_default();
                *n += 1;
                Joined { department: c.to_string(), order: *n }
            })
            .collect()
    }

    fn ticket(department: &str, order: u64) -> Ticket {
        Ticket {
            id: TicketId::random(),
            department: department.into(),
            order,
            opening_ms: None,
            joined_ms: 0,
            expires_ms: i64::MAX,
        }
    }

    #[test]
    fn tickets_go_in_joining_order_across_departements() {
        let mut b = board(&[("a", 100), ("b", 100)]);
        let admitter = Admitter { margin: 0.0 };
        let waiting = log("abbab");
        assert_eq!(admitter.admit(&mut b, &waiting, 3, &HashMap::new()), 3);
        assert_eq!((b.departments["a"].admitted_through, b.departments["b"].admitted_through), (1, 2));
        assert_eq!(b.standing(&ticket("a", 1)), Standing::Admitted);
        assert_eq!(b.standing(&ticket("a", 2)), Standing::Waiting { ahead: 0, places_left: 100 });
        assert_eq!(b.standing(&ticket("b", 5)), Standing::Waiting { ahead: 2, places_left: 100 });
        // The next tick goes on from where this one stopped.
        assert_eq!(admitter.admit(&mut b, &waiting, 10, &HashMap::new()), 2);
        assert_eq!((b.departments["a"].admitted_through, b.departments["b"].admitted_through), (2, 3));
    }

    #[test]
    fn a_full_departement_waits_without_holding_up_the_others() {
        let mut b = board(&[("a", 2), ("b", 100)]);
        let admitter = Admitter { margin: 0.5 };
        // Two of a's passes are out already: room for one more (2 × 1.5 − 2).
        let out = HashMap::from([("a".to_string(), 2)]);
        assert_eq!(admitter.admit(&mut b, &log("aaabab"), 100, &out), 3);
        assert_eq!((b.departments["a"].admitted_through, b.departments["b"].admitted_through), (1, 2));
        // Never more than the places and the margin, whatever the budget.
        let mut fresh = board(&[("a", 10)]);
        assert_eq!(admitter.admit(&mut fresh, &log(&"a".repeat(100)), 100, &HashMap::new()), 15);
    }

    #[test]
    fn a_sold_out_departement_says_so_to_waiting_and_admitted_alike() {
        let mut b = board(&[("a", 0), ("b", 3)]);
        b.departments.get_mut("a").unwrap().next_publication_ms = Some(86_400_000);
        b.departments.get_mut("a").unwrap().admitted_through = 5;
        let sold_out = Standing::SoldOut { next_publication_ms: Some(86_400_000) };
        assert_eq!(b.standing(&ticket("a", 3)), sold_out);
        assert_eq!(b.standing(&ticket("a", 9)), sold_out);
        assert_eq!(b.standing(&ticket("z", 1)), Standing::SoldOut { next_publication_ms: None });
        assert_eq!(Admitter { margin: 0.2 }.admit(&mut b, &log("aab"), 10, &HashMap::new()), 1);
    }
}
