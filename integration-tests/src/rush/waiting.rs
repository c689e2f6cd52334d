//! How the waiting room treated the crowd: who went in, in what order
//! compared with joining (Kendall's τ), how good the estimates shown were,
//! who was admitted and still found nothing, and how soon the waiters of a
//! département that sold out were told.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::analysis::quantile;
use super::monitor::Tick;
use super::record::{CitizenRecord, Fate};

/// A status answered "waiting" this long after the département sold out
/// is a waiter told late.
pub const TOLD_WITHIN_MS: u32 = 5_000;

#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub joined: u64,
    pub admitted: u64,
    pub told_sold_out: u64,
    pub left: u64,
    /// Between joining order and admission order, for those who joined
    /// after the opening and were admitted: all together, and within each
    /// département's line (weighted by its pairs). Lines wait while their
    /// places all have passes out, so the first mixes in the room's
    /// inventory rule; the second is first come, first served itself.
    pub kendall_tau: Option<f64>,
    pub kendall_tau_within_departements: Option<f64>,
    pub wait_p50_s: f64,
    pub wait_p90_s: f64,
    pub wait_max_s: f64,
    /// |estimate − wait observed| / wait observed, the estimate taken a
    /// quarter of the way through each wait of 10 s or more.
    pub eta_error_p50: Option<f64>,
    pub eta_error_p90: Option<f64>,
    /// Admitted, then left without a booking, by how their morning ended.
    pub admitted_without_booking: BTreeMap<&'static str, u64>,
    /// Statuses still "waiting" more than 5 s after their département
    /// sold out (as the room's overview showed it, polled each second).
    pub told_late: u64,
    /// How long after their département sold out waiters were told.
    pub told_after_p99_s: Option<f64>,
    pub peak_waiting: u64,
    pub peak_admissions_per_s: f64,
}

/// τ-b of pairs (x, y), in O(n log n): sort by x then y, count the
/// discordant pairs as inversions of y, correct for ties.
pub fn kendall_tau(pairs: &mut [(u32, u32)]) -> Option<f64> {
    let n = pairs.len() as u64;
    if n < 2 {
        return None;
    }
    pairs.sort_unstable();
    let ties = |keys: &mut dyn Iterator<Item = u64>| -> u64 {
        let mut counts: HashMap<u64, u64> = HashMap::new();
        for k in keys {
            *counts.entry(k).or_default() += 1;
        }
        counts.values().map(|t| t * (t - 1) / 2).sum()
    };
    let n1 = ties(&mut pairs.iter().map(|(x, _)| u64::from(*x)));
    let n2 = ties(&mut pairs.iter().map(|(_, y)| u64::from(*y)));
    let n3 = ties(&mut pairs.iter().map(|(x, y)| (u64::from(*x) << 32) | u64::from(*y)));
    let mut ys: Vec<u32> = pairs.iter().map(|(_, y)| *y).collect();
    let discordant = inversions(&mut ys);
    let n0 = n * (n - 1) / 2;
    let concordant = (n0 + n3).saturating_sub(n1 + n2 + discordant);
    let denominator = (((n0 - n1) as f64) * ((n0 - n2) as f64)).sqrt();
    (denominator > 0.0).then(|| (concordant as f64 - discordant as f64) / denominator)
}

/// Pairs i < j with v[i] > v[j] (strictly), by merge sort.
fn inversions(v: &mut [u32]) -> u64 {
    if v.len() < 2 {
        return 0;
    }
    let mid = v.len() / 2;
    let mut count = inversions(&mut v[..mid]) + inversions(&mut v[mid..]);
    let mut merged = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < v.len() {
        if v[i] <= v[j] {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            count += (mid - i) as u64;
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..]);
    v.copy_from_slice(&merged);
    count
}

pub fn room(records: &[CitizenRecord], ticks: &[Tick], opens_ms: u32) -> Option<Room> {
    let queued: Vec<(&CitizenRecord, &super::record::Queued)> =
        records.iter().filter_map(|r| r.queue.as_ref().map(|q| (r, q))).collect();
    if queued.is_empty() {
        return None;
    }
    let admitted: Vec<_> = queued.iter().filter(|(_, q)| q.admitted_ms.is_some()).collect();
    let after_t: Vec<_> = admitted.iter().filter(|(_, q)| q.joined_ms >= opens_ms).collect();
    let mut pairs: Vec<(u32, u32)> =
        after_t.iter().map(|(_, q)| (q.joined_ms, q.admitted_ms.unwrap_or_default())).collect();
    let mut lines: HashMap<&str, Vec<(u32, u32)>> = HashMap::new();
    for (_, q) in &after_t {
        lines.entry(q.department).or_default().push((q.joined_ms, q.admitted_ms.unwrap_or_default()));
    }
    let (mut weighted, mut weights) = (0.0, 0.0);
    for line in lines.values_mut() {
        let n = line.len() as f64;
        if let Some(tau) = kendall_tau(line) {
            weighted += tau * n * (n - 1.0) / 2.0;
            weights += n * (n - 1.0) / 2.0;
        }
    }
    let mut waits: Vec<u32> = admitted
        .iter()
        .map(|(_, q)| q.admitted_ms.unwrap_or_default().saturating_sub(q.joined_ms.max(opens_ms)))
        .collect();
    waits.sort_unstable();
    let mut errors: Vec<f64> = admitted
        .iter()
        .filter_map(|(_, q)| {
            let admitted = q.admitted_ms?;
            let wait = admitted.checked_sub(q.joined_ms.max(opens_ms))?;
            if wait < 10_000 {
                return None;
            }
            let quarter = q.joined_ms.max(opens_ms) + wait / 4;
            let (at, estimate_s) = q.estimates.iter().min_by_key(|(at, _)| at.abs_diff(quarter))?;
            let left_ms = f64::from(admitted.saturating_sub(*at)).max(1.0);
            Some((f64::from(*estimate_s) * 1000.0 - left_ms).abs() / left_ms)
        })
        .collect();
    errors.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| (!errors.is_empty()).then(|| errors[((errors.len() as f64 * q) as usize).min(errors.len() - 1)]);
    let mut admitted_without_booking = BTreeMap::new();
    for (r, _) in &admitted {
        if r.fate != Fate::Booked {
            *admitted_without_booking.entry(r.fate.label()).or_insert(0) += 1;
        }
    }
    // Since when each département has shown as sold out, at each second
    // (a cancellation can give it a place back for a while).
    let mut since: HashMap<&str, u32> = HashMap::new();
    let mut sold_out: Vec<(u32, HashMap<&str, u32>)> = Vec::new();
    for tick in ticks {
        let Some(q) = &tick.queue else { continue };
        let at = (tick.at_s * 1000.0) as u32;
        since.retain(|d, _| q.sold_out.iter().any(|s| s == d));
        for d in &q.sold_out {
            since.entry(d.as_str()).or_insert(at);
        }
        sold_out.push((at, since.clone()));
    }
    // Sold out since when, as of `at` (the last second seen before it).
    let sold_out_since = |department: &str, at: u32| -> Option<u32> {
        let i = sold_out.partition_point(|(t, _)| *t <= at);
        sold_out.get(i.checked_sub(1)?)?.1.get(department).copied()
    };
    let told_late = queued
        .iter()
        .filter(|(_, q)| {
            q.last_waiting_ms.is_some_and(|waiting| {
                sold_out_since(q.department, waiting).is_some_and(|sold| waiting > sold + TOLD_WITHIN_MS)
            })
        })
        .count() as u64;
    let mut told_after: Vec<u32> = queued
        .iter()
        .filter_map(|(_, q)| {
            let told = q.sold_out_ms?;
            Some(told.saturating_sub(sold_out_since(q.department, told)?))
        })
        .collect();
    told_after.sort_unstable();
    let mut previous_admitted = None;
    let mut peak_admissions_per_s: f64 = 0.0;
    for tick in ticks {
        if let Some(q) = &tick.queue {
            if let Some(before) = previous_admitted {
                peak_admissions_per_s = peak_admissions_per_s.max(q.admitted.saturating_sub(before) as f64);
            }
            previous_admitted = Some(q.admitted);
        }
    }
    let seconds = |ms: u32| f64::from(ms) / 1000.0;
    Some(Room {
        joined: queued.len() as u64,
        admitted: admitted.len() as u64,
        told_sold_out: queued.iter().filter(|(r, _)| r.fate == Fate::SoldOutInQueue).count() as u64,
        left: queued.iter().filter(|(r, _)| r.fate == Fate::LeftQueue).count() as u64,
        kendall_tau: kendall_tau(&mut pairs),
        kendall_tau_within_departements: (weights > 0.0).then(|| weighted / weights),
        wait_p50_s: seconds(quantile(&waits, 0.5)),
        wait_p90_s: seconds(quantile(&waits, 0.9)),
        wait_max_s: seconds(waits.last().copied().unwrap_or(0)),
        eta_error_p50: at(0.5),
        eta_error_p90: at(0.9),
        admitted_without_booking,
        told_late,
        told_after_p99_s: (!told_after.is_empty()).then(|| seconds(quantile(&told_after, 0.99))),
        peak_waiting: ticks.iter().filter_map(|t| t.queue.as_ref().map(|q| q.waiting)).max().unwrap_or(0),
        peak_admissions_per_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(pairs: &[(u32, u32)]) -> f64 {
        let (mut c, mut d, mut tx, mut ty) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..pairs.len() {
            for j in i + 1..pairs.len() {
                let (dx, dy) = (pairs[i].0.cmp(&pairs[j].0), pairs[i].1.cmp(&pairs[j].1));
                use std::cmp::Ordering::Equal;
                match (dx, dy) {
                    (Equal, Equal) => {}
                    (Equal, _) => tx += 1,
                    (_, Equal) => ty += 1,
                    (a, b) if a == b => c += 1,
                    _ => d += 1,
                }
            }
        }
        (c - d) as f64 / (((c + d + tx) * (c + d + ty)) as f64).sqrt()
    }

    #[test]
    fn kendall_tau_matches_the_definition_with_ties() {
        assert_eq!(kendall_tau(&mut [(1, 1), (2, 2), (3, 3)]), Some(1.0));
        assert_eq!(kendall_tau(&mut [(1, 3), (2, 2), (3, 1)]), Some(-1.0));
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32 % 20
        };
        for _ in 0..50 {
            let mut pairs: Vec<(u32, u32)> = (0..40).map(|_| (next(), next())).collect();
            let expected = brute(&pairs);
            let got = kendall_tau(&mut pairs).unwrap();
            assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        }
    }
}
