//! Who goes in, and what a waiting citizen is told. A ticket's place is a
//! key (its joining time in ms, shifted, plus random low bits): every
//! replica numbers its own joins and the keys still form one global order.
//! The leader keeps the log of waiting keys and, each tick, walks it from
//! the front with the tick's budget (the closed loop's rate): a ticket goes
//! in if its département still has room (places left, plus a margin for
//! those who abandon, less the passes still out), else its line waits
//! without holding up the others. What every replica needs to answer a
//! status is the board: per département, places left, the key its line is
//! admitted through, and how many wait, by second of joining.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::tokens::Ticket;

/// Low bits of a key drawn at random: joins of one millisecond on
/// different replicas still get distinct, unpredictable places.
pub const KEY_RANDOM_BITS: u32 = 20;

/// The key of a ticket joining at `joined_ms`.
pub fn key(joined_ms: i64, random: u32) -> u64 {
    ((joined_ms.max(0) as u64) << KEY_RANDOM_BITS) | u64::from(random & ((1 << KEY_RANDOM_BITS) - 1))
}

/// The second of joining a key stands for.
pub fn second_of(key: u64) -> i64 {
    ((key >> KEY_RANDOM_BITS) / 1000) as i64
}

/// The last key of a millisecond.
pub fn last_key_of(ms: i64) -> u64 {
    key(ms, u32::MAX)
}

/// A département without places whose next publication is this close
/// keeps its line: those who came early wait for the opening instead of
/// being sent away.
pub const PRE_QUEUE_MS: i64 = 3_600_000;

/// One département's line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub places_left: u32,
    /// Tickets of this line with a key up to this one are admitted.
    pub admitted_through: u64,
    /// The next publication of places (unix ms), if one is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_publication_ms: Option<i64>,
    /// Passes given and not yet seen to book: (second given, how many).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out: Vec<(i64, u32)>,
    /// Waiting tickets by second of joining, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<(i64, u32)>,
    /// No room left for now (all its places have passes out): its waiters
    /// do not count as ahead of anyone else's.
    #[serde(default)]
    pub held: bool,
}

impl Line {
    pub fn passes_out(&self) -> u32 {
        self.out.iter().map(|(_, n)| n).sum()
    }
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
    /// The room has not published a board yet.
    Unknown,
}

/// What every replica answers statuses from, published at most a second apart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Board {
    pub at_ms: i64,
    pub departments: BTreeMap<String, Line>,
    /// Admissions a second, as decided for the next tick.
    pub rate: f64,
    /// Admissions a second, as measured (smoothed).
    #[serde(default)]
    pub pace: Option<f64>,
    #[serde(default)]
    pub paused: bool,
    /// Admitted in all since the room started.
    #[serde(default)]
    pub admitted: u64,
    /// Joins in all, as read by the leader.
    #[serde(default)]
    pub joined: u64,
    /// Keys up to this one have been read into the log.
    #[serde(default)]
    pub read_through: u64,
    /// Proof-of-work difficulty for new joins, in bits.
    #[serde(default)]
    pub difficulty: u8,
}

impl Board {
    /// Places are to be published in `line` within the pre-queue horizon.
    pub fn opening_soon(&self, line: &Line) -> bool {
        line.next_publication_ms.is_some_and(|t| t - self.at_ms <= PRE_QUEUE_MS)
    }
}

/// The board with what answering a status needs precomputed: how many
/// wait in open lines, cumulated by second of joining.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub board: Board,
    /// (second, waiting in open lines who joined before the end of it).
    ahead: Vec<(i64, u64)>,
}

impl Published {
    pub fn new(board: Board) -> Self {
        let mut by_second: BTreeMap<i64, u64> = BTreeMap::new();
        for line in board.departments.values().filter(|l| !l.held && l.places_left > 0) {
            for (second, n) in &line.waiting {
                *by_second.entry(*second).or_default() += u64::from(*n);
            }
        }
        let mut total = 0;
        let ahead = by_second
            .into_iter()
            .map(|(second, n)| {
                total += n;
                (second, total)
            })
            .collect();
        Self { board, ahead }
    }

    /// Waiting in open lines who joined in seconds before `second`, and
    /// half of those who joined within it.
    fn ahead_of(&self, second: i64) -> u64 {
        let i = self.ahead.partition_point(|(s, _)| *s < second);
        let before = if i == 0 { 0 } else { self.ahead[i - 1].1 };
        let within = self.ahead.get(i).filter(|(s, _)| *s == second).map_or(0, |(_, c)| c - before);
        before + within / 2
    }

    pub fn total_waiting(&self) -> u64 {
        self.board.departments.values().flat_map(|l| &l.waiting).map(|(_, n)| u64::from(*n)).sum()
    }

    pub fn standing(&self, ticket: &Ticket) -> Standing {
        if self.board.at_ms == 0 {
            return Standing::Unknown;
        }
        let Some(line) = self.board.departments.get(&ticket.department) else {
            return Standing::SoldOut { next_publication_ms: None };
        };
        if line.places_left == 0 && !self.board.opening_soon(line) {
            Standing::SoldOut { next_publication_ms: line.next_publication_ms }
        } else if ticket.order <= line.admitted_through && line.places_left > 0 {
            Standing::Admitted
        } else {
            let ahead = if line.held || line.places_left == 0 {
                // Behind its own line only, which moves as passes are used.
                let second = second_of(ticket.order);
                line.waiting.iter().filter(|(s, _)| *s < second).map(|(_, n)| u64::from(*n)).sum()
            } else {
                self.ahead_of(second_of(ticket.order))
            };
            Standing::Waiting { ahead, places_left: line.places_left }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admitter {
    /// Admitted beyond the places left, as a share of them, for those who
    /// leave without booking.
    pub margin: f64,
}

impl Admitter {
    fn room(&self, line: &Line, out: u32) -> u32 {
        let allowed = (f64::from(line.places_left) * (1.0 + self.margin)).ceil() as u32;
        allowed.saturating_sub(out)
    }

    /// Admits up to `budget` tickets of `waiting` (key → département, every
    /// key past its line's admitted point), in key order, at second `now_s`.
    /// Moves the lines' admitted points, removes the admitted from the log,
    /// marks the lines left without room, and returns how many went in.
    pub fn admit(&self, board: &mut Board, waiting: &mut BTreeMap<u64, String>, budget: u32, now_s: i64) -> u32 {
        let mut admitted = 0;
        let mut out: HashMap<String, u32> = HashMap::new();
        for line in board.departments.values_mut() {
            line.held = false;
        }
        let mut gone = Vec::new();
        for (key, department) in waiting.iter() {
            if admitted == budget {
                break;
            }
            let Some(line) = board.departments.get_mut(department) else { continue };
            if line.held {
                continue;
            }
            let issued = out.entry(department.clone()).or_insert_with(|| line.passes_out());
            if self.room(line, *issued) == 0 {
                line.held = line.places_left > 0;
                continue;
            }
            line.admitted_through = line.admitted_through.max(*key);
            match line.out.last_mut() {
                Some((s, n)) if *s == now_s => *n += 1,
                _ => line.out.push((now_s, 1)),
            }
            *issued += 1;
            admitted += 1;
            gone.push(*key);
        }
        for key in gone {
            waiting.remove(&key);
        }
        // Lines the walk did not reach may be full too: a waiter's estimate
        // must not count on them.
        for line in board.departments.values_mut() {
            if !line.held && line.places_left > 0 && self.room(line, line.passes_out()) == 0 {
                line.held = true;
            }
        }
        board.admitted += u64::from(admitted);
        admitted
    }
}

/// Per département, the waiting log counted by second of joining.
pub fn waiting_by_second(waiting: &BTreeMap<u64, String>) -> HashMap<&str, Vec<(i64, u32)>> {
    let mut lines: HashMap<&str, Vec<(i64, u32)>> = HashMap::new();
    for (key, department) in waiting {
        let second = second_of(*key);
        let line = lines.entry(department.as_str()).or_default();
        match line.last_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => line.push((second, 1)),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::tokens::TicketId;

    fn board(places: &[(&str, u32)]) -> Board {
        Board {
            at_ms: 1,
            departments: places
                .iter()
                .map(|(d, p)| (d.to_string(), Line { places_left: *p, ..Default::default() }))
                .collect(),
            ..Default::default()
        }
    }

    /// `pattern` in joining order, one a second: each letter a ticket of
    /// that département.
    fn log(pattern: &str) -> BTreeMap<u64, String> {
        pattern.chars().enumerate().map(|(i, c)| (key(i as i64 * 1000, 7), c.to_string())).collect()
    }

    fn ticket(department: &str, second: i64) -> Ticket {
        Ticket {
            id: TicketId::random(),
            department: department.into(),
            order: key(second * 1000, 7),
            opening_ms: None,
            joined_ms: second * 1000,
            expires_ms: i64::MAX,
            shown: None,
        }
    }

    fn published(board: &Board, waiting: &BTreeMap<u64, String>) -> Published {
        let mut board = board.clone();
        let lines = waiting_by_second(waiting);
        for (d, line) in board.departments.iter_mut() {
            line.waiting = lines.get(d.as_str()).cloned().unwrap_or_default();
        }
        Published::new(board)
    }

    #[test]
    fn keys_order_by_millisecond_then_at_random() {
        assert!(key(1_000, u32::MAX) < key(1_001, 0));
        assert_eq!(second_of(key(61_999, 5)), 61);
        assert_eq!(last_key_of(5), key(5, (1 << KEY_RANDOM_BITS) - 1));
    }

    #[test]
    fn tickets_go_in_joining_order_across_departements() {
        let mut b = board(&[("a", 100), ("b", 100)]);
        let admitter = Admitter { margin: 0.0 };
        let mut waiting = log("abbab");
        assert_eq!(admitter.admit(&mut b, &mut waiting, 3, 0), 3);
        assert_eq!(b.departments["a"].admitted_through, key(0, 7));
        assert_eq!(b.departments["b"].admitted_through, key(2000, 7));
        let p = published(&b, &waiting);
        assert_eq!(p.standing(&ticket("a", 0)), Standing::Admitted);
        assert_eq!(p.standing(&ticket("a", 3)), Standing::Waiting { ahead: 0, places_left: 100 });
        assert_eq!(p.standing(&ticket("b", 4)), Standing::Waiting { ahead: 1, places_left: 100 });
        // The next tick goes on from where this one stopped.
        assert_eq!(admitter.admit(&mut b, &mut waiting, 10, 1), 2);
        assert!(waiting.is_empty());
        assert_eq!(b.admitted, 5);
    }

    #[test]
    fn a_full_departement_waits_without_holding_up_the_others() {
        let mut b = board(&[("a", 2), ("b", 100)]);
        // Two of a's passes are out already: room for one more (2 × 1.5 − 2).
        b.departments.get_mut("a").unwrap().out = vec![(0, 2)];
        let admitter = Admitter { margin: 0.5 };
        let mut waiting = log("aaabab");
        assert_eq!(admitter.admit(&mut b, &mut waiting, 100, 5), 3);
        assert_eq!(b.departments["a"].admitted_through, key(0, 7));
        assert!(b.departments["a"].held);
        assert_eq!(b.departments["b"].admitted_through, key(5000, 7));
        // A held line's waiters count only their own line ahead.
        let p = published(&b, &waiting);
        assert_eq!(p.standing(&ticket("a", 4)), Standing::Waiting { ahead: 2, places_left: 2 });
        // Never more than the places and the margin, whatever the budget.
        let mut fresh = board(&[("a", 10)]);
        assert_eq!(admitter.admit(&mut fresh, &mut log(&"a".repeat(100)), 100, 0), 15);
    }

    #[test]
    fn a_sold_out_departement_says_so_to_waiting_and_admitted_alike() {
        let mut b = board(&[("a", 0), ("b", 3)]);
        b.departments.get_mut("a").unwrap().next_publication_ms = Some(86_400_000);
        b.departments.get_mut("a").unwrap().admitted_through = key(5000, 0);
        let mut waiting = log("aab");
        assert_eq!(Admitter { margin: 0.2 }.admit(&mut b, &mut waiting, 10, 0), 1);
        let p = published(&b, &waiting);
        let sold_out = Standing::SoldOut { next_publication_ms: Some(86_400_000) };
        assert_eq!(p.standing(&ticket("a", 3)), sold_out);
        assert_eq!(p.standing(&ticket("a", 9)), sold_out);
        assert_eq!(p.standing(&ticket("z", 1)), Standing::SoldOut { next_publication_ms: None });
        assert_eq!(Published::default().standing(&ticket("a", 1)), Standing::Unknown);
        // Places published within the hour: the line waits for them.
        let mut soon = b.clone();
        soon.departments.get_mut("a").unwrap().next_publication_ms = Some(b.at_ms + PRE_QUEUE_MS);
        let p = published(&soon, &waiting);
        assert_eq!(p.standing(&ticket("a", 9)), Standing::Waiting { ahead: 2, places_left: 0 });
        assert_eq!(p.standing(&ticket("a", 3)), Standing::Waiting { ahead: 2, places_left: 0 });
    }

    #[test]
    fn those_ahead_are_counted_from_open_lines_by_second() {
        let b = board(&[("a", 100), ("b", 100)]);
        let mut waiting = log("abab");
        waiting.insert(key(3000, 9), "a".into());
        let p = published(&b, &waiting);
        assert_eq!(p.total_waiting(), 5);
        // Second 3 holds two: a ticket there counts half of them.
        assert_eq!(p.standing(&ticket("b", 3)), Standing::Waiting { ahead: 4, places_left: 100 });
        assert_eq!(p.standing(&ticket("b", 9)), Standing::Waiting { ahead: 5, places_left: 100 });
    }
}
