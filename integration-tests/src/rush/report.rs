//! The run's report: a summary table on stdout and the same figures, with
//! the per-second series, as JSON.

use std::collections::BTreeMap;
use std::path::Path;

use creneau_slot_inventory::invariants::Check;
use serde::Serialize;

use super::analysis::{EndpointStats, Second, Selling};
use super::delivery::Delivery;
use super::faults::Injected;
use super::probes::ProbeCounts;
use super::scenario::Scenario;

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    /// `processes` (fresh platform) or the gateway measured.
    pub target: String,
    pub started_at: String,
    pub duration_s: f64,
    pub places_offered: Option<u64>,
    pub citizens: BTreeMap<&'static str, u64>,
    pub definite_answers: u64,
    pub selling: Selling,
    pub endpoints: Vec<EndpointStats>,
    pub statuses: BTreeMap<String, u64>,
    /// Answers no correct server gives a well-behaved client (4xx other
    /// than the expected conflicts): bugs, counted apart.
    pub unexpected_answers: u64,
    /// Connection attempts the kernel dropped on a full accept queue
    /// during the run (TcpExt ListenOverflows, whole machine).
    pub listen_overflows: Option<u64>,
    pub generator: Generator,
    /// Mean and peak % of one core per component, over the selling window.
    pub cpu_mean: BTreeMap<String, f64>,
    pub cpu_peak: BTreeMap<String, f64>,
    pub baseline: Option<Baseline>,
    pub ledger: Option<Ledger>,
    pub invariants: Option<Vec<Check>>,
    pub faults: Vec<Injected>,
    /// Liveness and readiness asked of each service every second.
    pub probes: BTreeMap<&'static str, ProbeCounts>,
    /// Every event told to its citizen, once (fresh platforms only).
    pub delivery: Option<Delivery>,
    /// The waiting room, when the crowd went through it.
    pub room: Option<super::waiting::Room>,
    pub series: Vec<Second>,
}

#[derive(Debug, Serialize)]
pub struct Generator {
    pub connections: usize,
    pub cpu_mean_pct: f64,
    pub cpu_peak_pct: f64,
    pub timer_lag_p99_ms: f64,
    pub connection_wait_p99_ms: f64,
    /// Set when the generator itself may have limited the run.
    pub warning: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Baseline {
    /// What pgbench runs.
    pub transaction: &'static str,
    pub clients: usize,
    pub transactions: usize,
    pub pgbench_tps: f64,
    pub pgbench_p50_ms: f64,
    pub pgbench_p99_ms: f64,
    /// Acknowledged bookings per second over the selling window ÷ pgbench tps.
    pub ratio: f64,
}

/// Acknowledged bookings against the database.
#[derive(Debug, Serialize)]
pub struct Ledger {
    /// Acknowledged, not cancelled, yet not confirmed in the database.
    pub acknowledged_but_missing: u64,
    /// Confirmed in the database though no citizen was told (a request
    /// that committed after its client gave up waiting).
    pub confirmed_unacknowledged: u64,
}

impl Report {
    pub fn broken_invariants(&self) -> Vec<&Check> {
        self.invariants.iter().flatten().filter(|c| !c.holds()).collect()
    }

    pub fn server_errors(&self) -> u64 {
        self.statuses.iter().filter(|(k, _)| k.starts_with('5')).map(|(_, v)| v).sum()
    }

    pub fn timeouts(&self) -> u64 {
        self.statuses.get("timeout").copied().unwrap_or(0) + self.statuses.get("conn-error").copied().unwrap_or(0)
    }

    /// Requests the generator could not send in time: its own limit.
    pub fn not_sent(&self) -> u64 {
        self.statuses.get("not-sent").copied().unwrap_or(0)
    }

    /// 5xx answers other than 503 (shed, come back later).
    pub fn hard_server_errors(&self) -> u64 {
        self.statuses.iter().filter(|(k, _)| k.starts_with('5') && !k.starts_with("503")).map(|(_, v)| v).sum()
    }

    pub fn liveness_failures(&self) -> u64 {
        self.probes.values().map(|p| p.liveness_failures).sum()
    }

    fn print_room(&self) {
        let Some(r) = &self.room else { return };
        let f = |v: Option<f64>, scale: f64| v.map_or("—".into(), |v| format!("{:.2}", v * scale));
        println!();
        println!("  Waiting room");
        println!(
            "    joined {} · admitted {} · told sold out {} · left {} · peak waiting {} · peak admissions {:.0}/s",
            r.joined, r.admitted, r.told_sold_out, r.left, r.peak_waiting, r.peak_admissions_per_s
        );
        println!(
            "    wait p50 {:.1} s, p90 {:.1} s, max {:.1} s · Kendall τ {} ({} within départements) · ETA error p50 {} %, p90 {} %",
            r.wait_p50_s,
            r.wait_p90_s,
            r.wait_max_s,
            f(r.kendall_tau, 1.0),
            f(r.kendall_tau_within_departements, 1.0),
            f(r.eta_error_p50, 100.0),
            f(r.eta_error_p90, 100.0)
        );
        let without: Vec<String> = r.admitted_without_booking.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!(
            "    admitted without a booking: {} · waiters told late of a sell-out: {} (told p99 {} s after)",
            if without.is_empty() { "none".into() } else { without.join(", ") },
            r.told_late,
            f(r.told_after_p99_s, 1.0)
        );
    }

    fn print_faults(&self) {
        for f in &self.faults {
            let at = |t: Option<f64>| t.map_or("—".into(), |t| format!("{t:.1} s"));
            println!(
                "  Fault {}: began {:.1} s, ended {}, back {}, next booking {} (recovered in {}){}",
                f.fault,
                f.began_s,
                at(f.ended_s),
                at(f.back_s),
                at(f.first_booking_after_s),
                at(f.recovered_in_s),
                f.error.as_deref().map(|e| format!(" — ERROR: {e}")).unwrap_or_default()
            );
        }
        if !self.probes.is_empty() {
            let line: Vec<String> = self
                .probes
                .iter()
                .map(|(service, p)| {
                    format!(
                        "{service} {}/{} alive ({} down in faults), {} not ready",
                        p.checks - p.liveness_failures - p.liveness_failures_in_faults,
                        p.checks,
                        p.liveness_failures_in_faults,
                        p.readiness_failures
                    )
                })
                .collect();
            println!("  Probes, every second: {}", line.join("; "));
        }
        if let Some(d) = &self.delivery {
            println!(
                "  Delivery: {} events, {} messages, {} missing, {} duplicates, {} dead letters; drained {} after the run",
                d.events,
                d.messages,
                d.missing,
                d.duplicates,
                d.dead_letters,
                d.drained_in_s.map_or("never".into(), |t| format!("{t:.1} s"))
            );
        }
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    pub fn print(&self) {
        let s = &self.scenario;
        let total: u64 = self.citizens.values().sum();
        println!();
        println!("Rush ({:?}) against {} — {:.0} s", s.preset, self.target, self.duration_s);
        println!(
            "  {} citizens for {} places at {} centres; opening T = start + {:.0} s; {:.0} % early; burst over {:.0} s",
            total,
            self.places_offered.map_or("?".into(), |p| p.to_string()),
            s.centres,
            s.opens_in.as_secs_f64(),
            s.early_share * 100.0,
            s.arrival_window.as_secs_f64()
        );
        println!();
        println!("  Citizens");
        for (fate, n) in &self.citizens {
            println!("    {fate:<30} {n:>8}  {:>5.1} %", pct(*n, total));
        }
        println!(
            "    {:<30} {:>8}  {:>5.1} %",
            "definite answer",
            self.definite_answers,
            pct(self.definite_answers, total)
        );
        let b = &self.selling;
        println!();
        println!("  Selling");
        println!("    bookings acknowledged          {:>8}  ({} cancelled later)", b.bookings, b.cancelled);
        println!(
            "    bookings/s (T → last booking)  {:>8.1}  over {:.1} s; peak {}/s",
            b.bookings_per_s, b.window_s, b.peak_bookings_per_s
        );
        println!(
            "    sold out after                 {:>8}",
            b.sold_out_after_s.map_or("never".into(), |t| format!("{t:.1} s"))
        );
        println!("    places unsold at the end       {:>8}", opt(b.unsold_at_end));
        println!(
            "    left empty-handed with places unsold within reach {} (at worst {} places; {} of them told none left)",
            opt(b.left_while_places_unsold),
            opt(b.most_unsold_when_one_left),
            opt(b.told_none_left_wrongly)
        );
        if let Some(base) = &self.baseline {
            println!(
                "    pgbench, booking SQL           {:>8.0} tps at {} clients (p50 {:.1} ms, p99 {:.1} ms) → ratio {:.2}",
                base.pgbench_tps, base.clients, base.pgbench_p50_ms, base.pgbench_p99_ms, base.ratio
            );
        }
        self.print_room();
        println!();
        println!(
            "  {:<32} {:>8} {:>9} {:>9} {:>9} {:>9}  answers",
            "Endpoint", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for e in &self.endpoints {
            let outcomes: Vec<String> = e.outcomes.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            println!(
                "  {:<32} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1}  {}",
                e.route,
                e.requests,
                e.p50_ms,
                e.p95_ms,
                e.p99_ms,
                e.max_ms,
                outcomes.join(" ")
            );
        }
        println!();
        println!("  CPU, % of one core (mean / peak over the selling window)");
        for (component, mean) in &self.cpu_mean {
            println!("    {component:<18} {mean:>6.0} / {:>4.0}", self.cpu_peak.get(component).copied().unwrap_or(0.0));
        }
        let g = &self.generator;
        println!(
            "    generator: {} connections, timer lag p99 {:.1} ms, connection wait p99 {:.1} ms{}",
            g.connections,
            g.timer_lag_p99_ms,
            g.connection_wait_p99_ms,
            g.warning.as_deref().map(|w| format!(" — WARNING: {w}")).unwrap_or_default()
        );
        println!();
        println!(
            "  Errors: {} 5xx, {} timeouts or broken connections, {} never sent (generator's connections busy), \
             {} unexpected answers",
            self.server_errors(),
            self.timeouts(),
            self.not_sent(),
            self.unexpected_answers
        );
        println!(
            "  Kernel: {} connections dropped because a listen queue was full (whole machine)",
            self.listen_overflows.map_or("?".into(), |n| n.to_string())
        );
        if let Some(ledger) = &self.ledger {
            println!(
                "  Ledger: {} acknowledged bookings missing, {} confirmed without the citizen being told",
                ledger.acknowledged_but_missing, ledger.confirmed_unacknowledged
            );
        }
        self.print_faults();
        match &self.invariants {
            Some(checks) => {
                println!("  Invariants (database):");
                for c in checks {
                    println!(
                        "    {} {:<17} {} violations — {}",
                        if c.holds() { "ok  " } else { "FAIL" },
                        c.name,
                        c.violations,
                        c.rule
                    );
                }
            }
            None => println!("  Invariants: not checked (no database access)"),
        }
    }
}

fn pct(n: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { 100.0 * n as f64 / total as f64 }
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or("?".into(), |v| v.to_string())
}
