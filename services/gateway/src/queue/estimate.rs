//! Estimates that hold. The pace is the measured admission rate, smoothed
//! over half a minute, counted only while someone could go in; a waiting citizen's estimate is the people ahead
//! over the pace. What they were last shown travels in their ticket, so
//! that the next answer, on any replica, shows a position that never goes
//! up and a wait that moves from the last one (less the time elapsed)
//! towards the fresh estimate by at most a quarter (or ten seconds): a
//! stalled minute does not turn 23 minutes into 1,855.

use serde::{Deserialize, Serialize};

/// Time constant of the pace's smoothing.
const SMOOTHING_S: f64 = 30.0;

/// Admissions per second, as measured.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    per_s: Option<f64>,
    last: Option<(i64, u64)>,
}

impl Pace {
    /// `admitted` citizens in all, at `now_ms`.
    pub fn observe(&mut self, now_ms: i64, admitted: u64) {
        if let Some((at, before)) = self.last {
            let dt = (now_ms - at) as f64 / 1000.0;
            if dt <= 0.0 {
                return;
            }
            let instant = admitted.saturating_sub(before) as f64 / dt;
            let weight = 1.0 - (-dt / SMOOTHING_S).exp();
            self.per_s = Some(self.per_s.map_or(instant, |r| r + weight * (instant - r)));
        }
        self.last = Some((now_ms, admitted));
    }

    /// A tick in which nobody could be admitted (the line empty, or every
    /// line full): it says nothing of the pace, and is left out.
    pub fn idle(&mut self, now_ms: i64, admitted: u64) {
        self.last = Some((now_ms, admitted));
    }

    pub fn per_s(&self) -> Option<f64> {
        self.per_s
    }
}

/// What a waiting citizen was last told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    pub ahead: u64,
    /// Seconds; none while no pace is known.
    pub wait_s: Option<u64>,
    pub at_ms: i64,
}

/// What to tell a citizen with `ahead` people before them now.
pub fn next(previous: Option<Shown>, ahead: u64, pace: Option<f64>, now_ms: i64) -> Shown {
    let ahead = previous.map_or(ahead, |p| p.ahead.min(ahead));
    let fresh = pace.filter(|r| *r > 0.0).map(|r| (ahead as f64 / r).ceil());
    let expected = previous.and_then(|p| {
        let elapsed = (now_ms - p.at_ms).max(0) as f64 / 1000.0;
        p.wait_s.map(|w| (w as f64 - elapsed).max(0.0))
    });
    let wait = match (expected, fresh) {
        (Some(expected), Some(fresh)) => {
            let step = (expected / 4.0).max(10.0);
            Some(expected + (fresh - expected).clamp(-step, step))
        }
        (None, fresh) => fresh,
        (expected, None) => expected,
    };
    Shown { ahead, wait_s: wait.map(|w| w.round() as u64), at_ms: now_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_follows_admissions_smoothly() {
        let mut pace = Pace::default();
        pace.observe(0, 0);
        assert_eq!(pace.per_s(), None);
        for s in 1..=120 {
            pace.observe(s * 1000, (s * 50) as u64);
        }
        assert!((pace.per_s().unwrap() - 50.0).abs() < 0.5);
        // One second without admissions barely moves it.
        pace.observe(121_000, 6_000);
        assert!(pace.per_s().unwrap() > 45.0);
        // A minute before the opening, with nobody admissible, is not a slow pace.
        let mut opening = Pace::default();
        for s in 0..=60 {
            opening.idle(s * 1000, 0);
        }
        opening.observe(61_000, 100);
        assert_eq!(opening.per_s(), Some(100.0));
    }

    #[test]
    fn a_position_never_goes_up_and_a_wait_moves_by_a_quarter_at_most() {
        let first = next(None, 3_000, Some(10.0), 0);
        assert_eq!(first, Shown { ahead: 3_000, wait_s: Some(300), at_ms: 0 });
        // Steady pace: the wait counts down with the clock.
        let steady = next(Some(first), 2_800, Some(10.0), 20_000);
        assert_eq!(steady.wait_s, Some(280));
        // The pace falls tenfold: the estimate rises, a quarter at a time.
        let slowed = next(Some(steady), 2_790, Some(1.0), 40_000);
        assert_eq!(slowed.wait_s, Some(325), "260 s expected, moved by 65 s towards 2,790 s");
        let slowed_again = next(Some(slowed), 2_780, Some(1.0), 60_000);
        assert_eq!(slowed_again.wait_s, Some(381));
        // Someone ahead of them reconnects elsewhere: the position shown holds.
        let ahead_grew = next(Some(slowed_again), 2_900, Some(1.0), 80_000);
        assert_eq!(ahead_grew.ahead, 2_780);
        // No pace measured yet: the last estimate keeps counting down.
        let unknown = next(Some(first), 3_000, None, 60_000);
        assert_eq!(unknown.wait_s, Some(240));
        assert_eq!(next(None, 10, None, 0).wait_s, None);
    }
}
