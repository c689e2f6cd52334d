//! From raw samples, citizen records and monitor ticks to the figures of
//! the report: latency percentiles per endpoint, status counts, the
//! per-second series, sell-out, and who left while places were unsold.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::citizen::SEARCH_RADIUS_KM;
use super::geography::distance_km;
use super::monitor::Tick;
use super::record::{CitizenRecord, Endpoint, Fate, Outcome, Sample};
use super::report::Generator;
use super::scenario::Scenario;

#[derive(Debug, Clone, Serialize)]
pub struct EndpointStats {
    pub route: &'static str,
    pub requests: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers by status code, plus `timeout` and `conn-error`.
    pub outcomes: BTreeMap<String, u64>,
}

/// One second of the run; `t` counts from the opening (negative before).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Second {
    pub t: i64,
    pub arrivals: u64,
    pub requests: u64,
    pub bookings: u64,
    pub server_errors: u64,
    /// 503s: load shed by a service, the honest "come back later".
    pub shed: u64,
    pub timeouts: u64,
    pub listen_overflows: u64,
    pub p99_ms: f64,
    pub book_p99_ms: f64,
    pub remaining_places: Option<i64>,
    pub machine_busy: f64,
    pub citizens_in_flight: u64,
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

/// The q-quantile of sorted values.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

pub fn endpoints(samples: &[Sample]) -> Vec<EndpointStats> {
    Endpoint::ALL
        .iter()
        .filter_map(|endpoint| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.endpoint == *endpoint).collect();
            if mine.is_empty() {
                return None;
            }
            let mut latencies: Vec<u32> = mine.iter().map(|s| s.latency_us).collect();
            latencies.sort_unstable();
            let mut outcomes = BTreeMap::new();
            for s in &mine {
                *outcomes.entry(s.label()).or_insert(0) += 1;
            }
            Some(EndpointStats {
                route: endpoint.route(),
                requests: mine.len() as u64,
                p50_ms: ms(quantile(&latencies, 0.50)),
                p95_ms: ms(quantile(&latencies, 0.95)),
                p99_ms: ms(quantile(&latencies, 0.99)),
                max_ms: ms(*latencies.last().unwrap_or(&0)),
                outcomes,
            })
        })
        .collect()
}

/// The per-second series, from the first arrival to the last answer.
pub fn series(samples: &[Sample], citizens: &[CitizenRecord], ticks: &[Tick], opens_ms: u32) -> Vec<Second> {
    let second_of = |ms: u32| i64::from(ms / 1000);
    let last = samples.iter().map(|s| second_of(s.done_ms)).max().unwrap_or(0);
    let base = i64::from(opens_ms / 1000);
    let mut seconds: Vec<Second> = (0..=last).map(|s| Second { t: s - base, ..Default::default() }).collect();
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); seconds.len()];
    let mut book_latencies: Vec<Vec<u32>> = vec![Vec::new(); seconds.len()];
    for s in samples {
        let i = second_of(s.done_ms) as usize;
        let second = &mut seconds[i];
        second.requests += 1;
        match s.outcome {
            Outcome::Status(503) => {
                second.shed += 1;
                second.server_errors += 1;
            }
            Outcome::Status(code) if code >= 500 => second.server_errors += 1,
            Outcome::Timeout | Outcome::NotSent => second.timeouts += 1,
            _ => {}
        }
        latencies[i].push(s.latency_us);
        if s.endpoint == Endpoint::Book {
            book_latencies[i].push(s.latency_us);
        }
    }
    for c in citizens {
        if let Some(second) = seconds.get_mut(second_of(c.arrived_ms) as usize) {
            second.arrivals += 1;
        }
        if let Some(second) = c.booked_ms.and_then(|b| seconds.get_mut(second_of(b) as usize)) {
            second.bookings += 1;
        }
    }
    for (i, second) in seconds.iter_mut().enumerate() {
        latencies[i].sort_unstable();
        book_latencies[i].sort_unstable();
        second.p99_ms = ms(quantile(&latencies[i], 0.99));
        second.book_p99_ms = ms(quantile(&book_latencies[i], 0.99));
        if let Some(tick) = tick_at(ticks, i as f64 + 0.5) {
            second.remaining_places = tick.remaining_places;
            second.machine_busy = tick.machine_busy;
            second.citizens_in_flight = tick.citizens_in_flight;
            second.listen_overflows = tick.listen_overflows.unwrap_or(0);
        }
    }
    seconds
}

/// The monitor tick nearest to `at_s` seconds after the start.
pub fn tick_at(ticks: &[Tick], at_s: f64) -> Option<&Tick> {
    ticks.iter().min_by(|a, b| (a.at_s - at_s).abs().total_cmp(&(b.at_s - at_s).abs()))
}

#[derive(Debug, Clone, Serialize)]
pub struct Selling {
    /// Acknowledged bookings.
    pub bookings: u64,
    pub cancelled: u64,
    /// From the opening to the last acknowledged booking.
    pub window_s: f64,
    pub bookings_per_s: f64,
    pub peak_bookings_per_s: u64,
    /// Seconds after the opening when no first-dose place was left.
    pub sold_out_after_s: Option<f64>,
    pub unsold_at_end: Option<i64>,
    /// Citizens who left without a booking while places were still unsold
    /// within their search radius.
    pub left_while_places_unsold: Option<u64>,
    /// The most such places at a moment someone left empty-handed.
    pub most_unsold_when_one_left: Option<i64>,
    /// Of those, citizens whose searches had said nothing was left.
    pub told_none_left_wrongly: Option<u64>,
}

/// Where each centre is, by id, to tell which places were within reach.
pub type Centres = HashMap<String, (f64, f64)>;

pub fn selling(
    citizens: &[CitizenRecord],
    seconds: &[Second],
    ticks: &[Tick],
    opens_ms: u32,
    centres: &Centres,
) -> Selling {
    let bookings = citizens.iter().filter(|c| c.booked_ms.is_some()).count() as u64;
    let last_booking = citizens.iter().filter_map(|c| c.booked_ms).max().unwrap_or(opens_ms);
    let window_s = f64::from(last_booking.saturating_sub(opens_ms)) / 1000.0;
    let opens_s = f64::from(opens_ms) / 1000.0;
    let sold_out_after_s = ticks.iter().find(|t| t.remaining_places == Some(0)).map(|t| t.at_s - opens_s);
    let with_db = ticks.iter().any(|t| t.remaining_places.is_some());
    let unsold_at_left: Vec<(Fate, i64)> = citizens
        .iter()
        .filter(|c| c.fate != Fate::Booked)
        .filter_map(|c| {
            let tick = tick_at(ticks, f64::from(c.ended_ms) / 1000.0)?;
            let reachable =
                |id: &String| centres.get(id).is_some_and(|at| distance_km(*at, c.home) <= SEARCH_RADIUS_KM);
            Some((c.fate, tick.remaining_by_centre.iter().filter(|(id, _)| reachable(id)).map(|(_, n)| *n).sum()))
        })
        .filter(|(_, left)| *left > 0)
        .collect();
    Selling {
        bookings,
        cancelled: citizens.iter().filter(|c| c.cancelled).count() as u64,
        window_s,
        bookings_per_s: if window_s > 0.0 { bookings as f64 / window_s } else { 0.0 },
        peak_bookings_per_s: seconds.iter().map(|s| s.bookings).max().unwrap_or(0),
        sold_out_after_s,
        unsold_at_end: ticks.iter().rev().find_map(|t| t.remaining_places),
        left_while_places_unsold: with_db.then_some(unsold_at_left.len() as u64),
        most_unsold_when_one_left: unsold_at_left.iter().map(|(_, n)| *n).max(),
        told_none_left_wrongly: with_db
            .then_some(unsold_at_left.iter().filter(|(fate, _)| *fate == Fate::NoSlotLeft).count() as u64),
    }
}

pub fn fates(citizens: &[CitizenRecord]) -> BTreeMap<&'static str, u64> {
    Fate::ALL.iter().map(|f| (f.label(), citizens.iter().filter(|c| c.fate == *f).count() as u64)).collect()
}

/// Mean and peak CPU per component between two instants of the run.
pub fn cpu_over(ticks: &[Tick], from_s: f64, to_s: f64) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let window: Vec<&Tick> = ticks.iter().filter(|t| t.at_s >= from_s && t.at_s <= to_s + 1.0).collect();
    let mut mean = BTreeMap::new();
    let mut peak = BTreeMap::new();
    for tick in &window {
        for (component, pct) in &tick.cpu {
            *mean.entry(component.clone()).or_insert(0.0) += pct / window.len() as f64;
            let top = peak.entry(component.clone()).or_insert(0.0f64);
            *top = top.max(*pct);
        }
        *mean.entry("whole machine (% of all cores)".to_owned()).or_insert(0.0) +=
            tick.machine_busy / window.len() as f64;
        let top = peak.entry("whole machine (% of all cores)".to_owned()).or_insert(0.0f64);
        *top = top.max(tick.machine_busy);
    }
    (mean, peak)
}

pub fn generator(
    scenario: &Scenario,
    samples: &[Sample],
    ticks: &[Tick],
    mean: &BTreeMap<String, f64>,
    peak: &BTreeMap<String, f64>,
) -> Generator {
    let mut lags: Vec<u32> = ticks.iter().map(|t| (t.generator_lag_ms * 1000.0) as u32).collect();
    lags.sort_unstable();
    let mut waits: Vec<u32> = samples.iter().map(|s| s.queued_us).collect();
    waits.sort_unstable();
    let lag_p99 = f64::from(quantile(&lags, 0.99)) / 1000.0;
    let wait_p99 = f64::from(quantile(&waits, 0.99)) / 1000.0;
    let mut warnings = Vec::new();
    if lag_p99 > 100.0 {
        warnings.push(format!("its timers ran {lag_p99:.0} ms late (p99): it is short of CPU"));
    }
    if wait_p99 > 100.0 {
        warnings.push(format!("requests waited {wait_p99:.0} ms for a connection (p99): raise --connections"));
    }
    Generator {
        connections: scenario.connections,
        cpu_mean_pct: mean.get("load generator").copied().unwrap_or(0.0),
        cpu_peak_pct: peak.get("load generator").copied().unwrap_or(0.0),
        timer_lag_p99_ms: lag_p99,
        connection_wait_p99_ms: wait_p99,
        warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
    }
}

/// For each fault, the first booking acknowledged once its target was
/// back: how long the platform took to sell again by itself.
pub fn recoveries(faults: &mut [super::faults::Injected], citizens: &[CitizenRecord]) {
    let mut booked: Vec<f64> = citizens.iter().filter_map(|c| Some(f64::from(c.booked_ms?) / 1000.0)).collect();
    booked.sort_by(f64::total_cmp);
    for fault in faults {
        let Some(back) = fault.back_s else { continue };
        let next = booked.iter().copied().find(|t| *t >= back);
        fault.first_booking_after_s = next;
        fault.recovered_in_s = next.map(|t| t - back);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(endpoint: Endpoint, outcome: Outcome, done_ms: u32, latency_us: u32) -> Sample {
        Sample { endpoint, outcome, problem: None, done_ms, latency_us, queued_us: 0 }
    }

    #[test]
    fn percentiles_and_outcomes_per_endpoint() {
        let mut samples: Vec<Sample> =
            (1..=100).map(|i| sample(Endpoint::Search, Outcome::Status(200), 10, i * 1000)).collect();
        samples.push(sample(Endpoint::Book, Outcome::Timeout, 20, 5_000_000));
        let stats = endpoints(&samples);
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].p50_ms, stats[0].p99_ms, stats[0].max_ms), (51.0, 100.0, 100.0));
        assert_eq!(stats[1].outcomes.get("timeout"), Some(&1));
    }

    #[test]
    fn seconds_count_from_the_opening_and_leavers_are_matched_to_places_left() {
        let samples = vec![
            sample(Endpoint::Book, Outcome::Status(201), 3_200, 1000),
            sample(Endpoint::Search, Outcome::Status(503), 3_900, 1000),
        ];
        let citizens = vec![
            CitizenRecord {
                home: (48.85, 2.35),
                arrived_ms: 500,
                ended_ms: 3_200,
                fate: Fate::Booked,
                booked_ms: Some(3_200),
                reference: None,
                cancelled: false,
                cancel_unanswered: false,
                queue: None,
            },
            CitizenRecord {
                home: (48.85, 2.35),
                arrived_ms: 2_100,
                ended_ms: 3_900,
                fate: Fate::GaveUpRaces,
                booked_ms: None,
                reference: None,
                cancelled: false,
                cancel_unanswered: false,
                queue: None,
            },
        ];
        // Paris has the places counted; Lyon's are out of reach.
        let tick = |at_s: f64, remaining: i64| Tick {
            at_s,
            remaining_places: Some(remaining + 100),
            remaining_by_centre: [("paris".to_owned(), remaining), ("lyon".to_owned(), 100)].into(),
            cpu: BTreeMap::new(),
            machine_busy: 50.0,
            citizens_in_flight: 1,
            generator_lag_ms: 0.0,
            listen_overflows: None,
            queue: None,
        };
        let ticks = vec![tick(3.0, 4), tick(4.0, 3), tick(5.0, 0)];
        let centres: Centres = [("paris".to_owned(), (48.86, 2.34)), ("lyon".to_owned(), (45.76, 4.84))].into();
        let seconds = series(&samples, &citizens, &ticks, 2_000);
        assert_eq!(seconds.iter().map(|s| s.t).collect::<Vec<_>>(), [-2, -1, 0, 1]);
        assert_eq!((seconds[3].bookings, seconds[3].shed, seconds[0].arrivals, seconds[2].arrivals), (1, 1, 1, 1));
        let sold = selling(&citizens, &seconds, &ticks, 2_000, &centres);
        assert_eq!(sold.sold_out_after_s, None, "Lyon never sold out");
        let mut sold_out = ticks.clone();
        sold_out[2].remaining_places = Some(0);
        assert_eq!(selling(&citizens, &seconds, &sold_out, 2_000, &centres).sold_out_after_s, Some(3.0));
        assert_eq!(sold.left_while_places_unsold, Some(1));
        assert_eq!(sold.most_unsold_when_one_left, Some(3));
        assert!((sold.bookings_per_s - 1.0 / 1.2).abs() < 1e-9);
    }
}
