//! When each citizen turns up. Some are waiting before bookings open and
//! keep refreshing; then the news spreads and the rest arrive in a burst
//! that decays over the window (most in its first quarter), as traffic
//! did on the first mornings of 2021.

use std::time::Duration;

use rand::Rng;

use super::scenario::Scenario;

/// Arrival times since the start of the run, in order.
pub fn schedule(scenario: &Scenario, rng: &mut impl Rng) -> Vec<Duration> {
    let opens = scenario.opens_in.as_secs_f64();
    let window = scenario.arrival_window.as_secs_f64().max(0.001);
    // Decay constant: 98 % of the burst has arrived by the window's end.
    let tau = window / 4.0;
    let tail = 1.0 - (-window / tau).exp();
    let mut times: Vec<Duration> = (0..scenario.citizens)
        .map(|_| {
            let at = if rng.random_bool(scenario.early_share.clamp(0.0, 1.0)) {
                rng.random_range(0.0..=opens)
            } else {
                // Inverse of the exponential CDF, truncated to the window.
                let u: f64 = rng.random_range(0.0..1.0);
                opens - tau * (1.0 - u * tail).ln()
            };
            Duration::from_secs_f64(at)
        })
        .collect();
    times.sort_unstable();
    times
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::rush::scenario::{Preset, Scenario};

    #[test]
    fn early_birds_wait_before_the_opening_and_the_burst_decays() {
        let mut scenario = Scenario::preset(Preset::LaunchDay);
        scenario.citizens = 20_000;
        let times = schedule(&scenario, &mut StdRng::seed_from_u64(7));
        assert_eq!(times.len(), 20_000);
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "in order");
        let opens = scenario.opens_in;
        let end = opens + scenario.arrival_window;
        assert!(times.iter().all(|t| *t <= end), "nobody after the window");
        let early = times.iter().filter(|t| **t < opens).count() as f64 / 20_000.0;
        assert!((0.13..0.17).contains(&early), "about 15 % early: {early}");
        let quarter = opens + scenario.arrival_window / 4;
        let first = times.iter().filter(|t| **t >= opens && **t < quarter).count();
        let last = times.iter().filter(|t| **t >= end - scenario.arrival_window / 4).count();
        assert!(first > 20 * last, "a burst that decays: {first} in the first quarter, {last} in the last");
    }

    #[test]
    fn the_same_seed_gives_the_same_morning() {
        let scenario = Scenario::preset(Preset::Smoke);
        let a = schedule(&scenario, &mut StdRng::seed_from_u64(1));
        let b = schedule(&scenario, &mut StdRng::seed_from_u64(1));
        assert_eq!(a, b);
    }
}
