//! Once a second: who is using the CPU (each service, PostgreSQL, the
//! generator itself, the whole machine), how many places are still
//! unsold, how late the generator's own timers fire — and the progress
//! line.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Serialize;

use super::citizen::Crowd;
use super::record::Live;
use super::seed::ID_PREFIX;

#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// Seconds since the run started.
    pub at_s: f64,
    /// First-dose places not yet booked, from the database.
    pub remaining_places: Option<i64>,
    /// The same, per centre.
    #[serde(skip)]
    pub remaining_by_centre: HashMap<String, i64>,
    /// % of one core, per component.
    pub cpu: BTreeMap<String, f64>,
    /// % of all cores, whole machine.
    pub machine_busy: f64,
    pub citizens_in_flight: u64,
    /// Worst lateness of a 50 ms timer in the generator over the second.
    pub generator_lag_ms: f64,
    /// Connections the kernel dropped on a full accept queue this second.
    pub listen_overflows: Option<u64>,
    /// The waiting room as the gateway showed it, when it is on.
    pub queue: Option<RoomTick>,
}

/// `GET /api/v1/queue` at one second.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RoomTick {
    pub waiting: u64,
    pub admitted: u64,
    pub rate: f64,
    #[serde(skip)]
    pub sold_out: Vec<String>,
}

async fn room(crowd: &Crowd) -> Option<RoomTick> {
    if !crowd.scenario.queue {
        return None;
    }
    let request = crowd.browser.get("/api/v1/queue").timeout(Duration::from_millis(900));
    let body: serde_json::Value = request.send().await.ok()?.json().await.ok()?;
    Some(RoomTick {
        waiting: body["waiting"].as_u64()?,
        admitted: body["admitted"].as_u64()?,
        rate: body["admission_rate_per_s"].as_f64()?,
        sold_out: body["departments"]
            .as_array()?
            .iter()
            .filter(|d| d["sold_out"] == true)
            .filter_map(|d| d["department"].as_str().map(str::to_owned))
            .collect(),
    })
}

pub struct Watched {
    /// The services' processes, whose ids change when a fault restarts one.
    pub services: Option<Arc<super::processes::Services>>,
    pub db: Option<(DatabaseConnection, DateTime<Utc>)>,
    pub citizens: u64,
}

/// Runs until `done`; returns the ticks.
pub async fn watch(watched: Watched, crowd: Arc<Crowd>, done: Arc<AtomicBool>) -> Vec<Tick> {
    let live = &crowd.browser;
    let started = live.epoch();
    let lag = Arc::new(AtomicU64::new(0));
    let probe = tokio::spawn(probe_lag(lag.clone(), done.clone()));
    let ticks_per_s = clock_ticks();
    let pids = || watched.services.as_ref().map(|s| s.pids()).unwrap_or_default();
    let mut cpu = CpuMeter::default();
    cpu.sample(&pids());
    let mut machine = machine_ticks();
    let mut overflows = listen_overflows();
    let tty = std::io::stderr().is_terminal();
    let mut ticks = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    let mut last = Instant::now();
    while !done.load(Relaxed) {
        interval.tick().await;
        let elapsed = last.elapsed().as_secs_f64();
        last = Instant::now();
        let used = cpu.sample(&pids());
        let now_machine = machine_ticks();
        let (busy, total) = (now_machine.0 - machine.0, now_machine.1 - machine.1);
        machine = now_machine;
        let by_centre = match &watched.db {
            Some((db, before)) => remaining_places(db, *before).await,
            None => None,
        };
        let now_overflows = listen_overflows();
        let new_overflows = now_overflows.zip(overflows).map(|(now, before)| now.saturating_sub(before));
        overflows = now_overflows;
        let l = &live.live;
        let tick = Tick {
            at_s: started.elapsed().as_secs_f64(),
            remaining_places: by_centre.as_ref().map(|c| c.values().sum()),
            remaining_by_centre: by_centre.unwrap_or_default(),
            cpu: used.into_iter().map(|(k, t)| (k, 100.0 * t as f64 / ticks_per_s / elapsed)).collect(),
            machine_busy: if total > 0 { 100.0 * busy as f64 / total as f64 } else { 0.0 },
            citizens_in_flight: Live::get(&l.arrived) - Live::get(&l.finished),
            generator_lag_ms: lag.swap(0, Relaxed) as f64 / 1000.0,
            listen_overflows: new_overflows,
            queue: room(&crowd).await,
        };
        let every = if tty { 1 } else { 5 };
        if ticks.len() % every == 0 {
            progress(&tick, l, watched.citizens, tty);
        }
        ticks.push(tick);
    }
    if tty {
        eprintln!();
    }
    let _ = probe.await;
    ticks
}

fn progress(tick: &Tick, l: &Live, citizens: u64, tty: bool) {
    let arrived = Live::get(&l.arrived);
    let width = 24;
    let filled = (arrived as usize * width).checked_div(citizens as usize).unwrap_or(0).min(width);
    let bar: String = "█".repeat(filled) + &"░".repeat(width - filled);
    let line = format!(
        "{:>6.1}s {bar} {arrived}/{citizens} arrived · {} in flight · {} booked · {} places left · {} 5xx · {} timeouts · {} not sent · CPU {:.0}%",
        tick.at_s,
        tick.citizens_in_flight,
        Live::get(&l.booked),
        tick.remaining_places.map_or("?".into(), |r| r.to_string()),
        Live::get(&l.server_errors),
        Live::get(&l.timeouts),
        Live::get(&l.not_sent),
        tick.machine_busy,
    );
    let mut err = std::io::stderr().lock();
    if tty {
        let _ = write!(err, "\r\x1b[2K{line}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

async fn probe_lag(worst: Arc<AtomicU64>, done: Arc<AtomicBool>) {
    let period = Duration::from_millis(50);
    while !done.load(Relaxed) {
        let asked = Instant::now();
        tokio::time::sleep(period).await;
        let late = asked.elapsed().saturating_sub(period).as_micros() as u64;
        worst.fetch_max(late, Relaxed);
    }
}

async fn remaining_places(db: &DatabaseConnection, before: DateTime<Utc>) -> Option<HashMap<String, i64>> {
    let sql = format!(
        "SELECT centre_id, CAST(SUM(capacity - booked) AS BIGINT) AS remaining FROM slots \
         WHERE centre_id LIKE '{ID_PREFIX}%' AND status = 'open' AND starts_at < ? GROUP BY centre_id"
    );
    let statement = creneau_kit::db::statement(db.get_database_backend(), &sql, [before.into()]);
    let rows = tokio::time::timeout(Duration::from_millis(900), db.query_all_raw(statement)).await.ok()?.ok()?;
    rows.into_iter().map(|r| Some((r.try_get("", "centre_id").ok()?, r.try_get("", "remaining").ok()?))).collect()
}

/// The kernel's count of connections dropped because an accept queue was
/// full: a server too slow to accept shows here before anywhere else.
pub fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names.split_whitespace().position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Clock ticks per second of /proc's CPU times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// (busy, total) ticks of the whole machine since boot.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU ticks used since the previous sample, per component: each service
/// process, every PostgreSQL process together, and this generator.
#[derive(Default)]
struct CpuMeter {
    last: HashMap<u32, u64>,
}

impl CpuMeter {
    fn sample(&mut self, services: &[(&'static str, u32)]) -> BTreeMap<String, u64> {
        let mut now = HashMap::new();
        let mut used = BTreeMap::new();
        let mut account = |component: &str, pid: u32, now: &mut HashMap<u32, u64>| {
            if let Some(ticks) = process_ticks(pid) {
                // A process born during the second spent all its ticks in it.
                let delta = ticks.saturating_sub(self.last.get(&pid).copied().unwrap_or(0));
                *used.entry(component.to_owned()).or_insert(0) += delta;
                now.insert(pid, ticks);
            }
        };
        for (service, pid) in services {
            account(service, *pid, &mut now);
        }
        account("load generator", std::process::id(), &mut now);
        for pid in postgres_pids() {
            account("postgresql", pid, &mut now);
        }
        self.last = now;
        used
    }
}

fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is the
    // first; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn postgres_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_cpu_time_grows_as_it_works() {
        let before = process_ticks(std::process::id()).expect("own /proc/self/stat");
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(150) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = process_ticks(std::process::id()).unwrap();
        assert!(after > before, "{before} → {after} ticks");
        let (busy, total) = machine_ticks();
        assert!(busy > 0 && total >= busy);
        assert!(listen_overflows().is_some(), "TcpExt ListenOverflows is read from /proc/net/netstat");
    }
}
