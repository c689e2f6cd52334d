//! `rush`: the launch-day morning replayed against Créneau. A fresh
//! platform (every service its own process, on a fresh PostgreSQL
//! database) or a running gateway; centres and places that open at T;
//! citizens arriving like a crowd; then figures, a chart, the invariants
//! checked in the database, and pgbench as the physical baseline.

mod analysis;
mod arrivals;
mod browser;
mod chart;
mod checks;
mod citizen;
mod delivery;
mod faults;
mod geography;
mod monitor;
mod probes;
mod processes;
mod record;
mod report;
mod scenario;
mod seed;
mod waiting;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use creneau::Databases;
use creneau_kit::DatabaseSettings;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::bench::booking::{ScratchDatabase, baseline};
use crate::bench::stats::Latency;
use browser::Browser;
use citizen::Crowd;
use record::{CitizenRecord, Live, Sample};
use report::{Baseline, Report};
pub use scenario::{Preset, Scenario};

#[derive(Debug, clap::Args)]
pub struct Options {
    #[arg(long, value_enum, default_value = "smoke")]
    preset: Preset,
    /// Citizens in the crowd.
    #[arg(long)]
    citizens: Option<usize>,
    /// Vaccination centres publishing at the opening.
    #[arg(long)]
    centres: Option<usize>,
    /// First-dose places on offer.
    #[arg(long)]
    places: Option<usize>,
    /// Seconds from the start to the opening.
    #[arg(long)]
    opens_in: Option<u64>,
    /// Seconds over which most citizens arrive after the opening.
    #[arg(long)]
    arrival_window: Option<u64>,
    /// Seconds a citizen keeps trying.
    #[arg(long)]
    patience: Option<u64>,
    /// Places a citizen tries before giving up.
    #[arg(long)]
    attempts: Option<u32>,
    /// Requests the generator keeps in flight at most.
    #[arg(long)]
    connections: Option<usize>,
    /// Seed of every random choice: the same seed replays the same morning.
    #[arg(long)]
    seed: Option<u64>,
    /// PostgreSQL server: a fresh database is made on it for the run, and
    /// pgbench's on it too.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Measure this running gateway instead of starting a platform.
    #[arg(long, requires_all = ["centre_directory", "slot_inventory"])]
    target: Option<String>,
    /// With --target: the centre directory's gRPC address, for seeding.
    #[arg(long)]
    centre_directory: Option<String>,
    /// With --target: slot-inventory's gRPC address, for seeding.
    #[arg(long)]
    slot_inventory: Option<String>,
    /// With --target: slot-inventory's database, for the places-left
    /// series, the ledger and the invariants (read only).
    #[arg(long, env = "RUSH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the report, chart, service logs and maildir go.
    #[arg(long, default_value = "rush-report")]
    out: PathBuf,
    /// The crowd goes straight to the funnel, as before the waiting room.
    #[arg(long)]
    no_queue: bool,
    /// Skip the pgbench baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Keep the run's database.
    #[arg(long)]
    keep: bool,
    /// A fault to inject, `action:target@start[+duration]`, any number of
    /// times: `kill:slot-inventory@30s`, `stop:notification@20s+600s`,
    /// `pause:slot-inventory@30s+10s`, `restart:postgres@40s`. Not with
    /// --target. The run waits for the last fault to end, then for every
    /// notification to be delivered.
    #[arg(long = "fault", value_name = "FAULT")]
    faults: Vec<faults::Fault>,
}

impl Options {
    fn scenario(&self) -> Scenario {
        let mut s = Scenario::preset(self.preset);
        let secs = Duration::from_secs;
        s.citizens = self.citizens.unwrap_or(s.citizens);
        s.centres = self.centres.unwrap_or(s.centres);
        s.places = self.places.unwrap_or(s.places);
        s.opens_in = self.opens_in.map_or(s.opens_in, secs);
        s.arrival_window = self.arrival_window.map_or(s.arrival_window, secs);
        s.patience = self.patience.map_or(s.patience, secs);
        s.attempts = self.attempts.unwrap_or(s.attempts);
        s.connections = self.connections.unwrap_or(s.connections);
        s.seed = self.seed.unwrap_or(s.seed);
        s.queue = s.queue && !self.no_queue;
        s
    }
}

/// Where the crowd goes and what can be read behind it.
struct Platform {
    services: Option<Arc<processes::Services>>,
    scratch: Option<ScratchDatabase>,
    gateway: String,
    centre_directory: String,
    slot_inventory: String,
    database: Option<String>,
}

async fn platform(o: &Options) -> anyhow::Result<Platform> {
    if let Some(target) = &o.target {
        anyhow::ensure!(o.faults.is_empty(), "faults need a platform the rush starts itself (not --target)");
        return Ok(Platform {
            services: None,
            scratch: None,
            gateway: target.clone(),
            centre_directory: o.centre_directory.clone().context("--centre-directory")?,
            slot_inventory: o.slot_inventory.clone().context("--slot-inventory")?,
            database: o.database_url.clone(),
        });
    }
    let scratch = ScratchDatabase::create(&o.postgres, "creneau_rush").await?;
    creneau::migrate_all(&Databases::Shared(scratch.url.clone())).await?;
    let services = processes::Services::start(&scratch.url, &o.out, o.scenario().queue).await?;
    Ok(Platform {
        gateway: services.gateway.clone(),
        centre_directory: services.centre_directory.clone(),
        slot_inventory: services.slot_inventory.clone(),
        database: Some(scratch.url.clone()),
        services: Some(Arc::new(services)),
        scratch: Some(scratch),
    })
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let scenario = o.scenario();
    anyhow::ensure!(scenario.places >= scenario.centres, "fewer places than centres");
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let mut platform = platform(&o).await?;
    let result = rush(&o, &scenario, &mut platform).await;
    if let Some(services) = platform.services.take() {
        // Still shared only when the run failed half-way (a task of the
        // run holds it): its error is the one to report, and the services
        // die with this process.
        match Arc::into_inner(services) {
            Some(services) => services.stop().await.context("stopping the services")?,
            None => eprintln!("the services are still in use; they stop with the generator"),
        }
    }
    let report = finish(&o, result?).await?;
    if let Some(scratch) = platform.scratch {
        if o.keep {
            println!("database kept: {}", scratch.url);
        } else {
            scratch.drop().await?;
        }
    }
    checks::verdict(&report)
}

/// What the crowd run leaves for the report.
struct Run {
    report: Report,
    opens_s: f64,
    ticks: Vec<monitor::Tick>,
}

async fn rush(o: &Options, scenario: &Scenario, platform: &mut Platform) -> anyhow::Result<Run> {
    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let plan = seed::plan(scenario.centres, scenario.places, Utc::now() + scenario.opens_in, &mut rng);
    eprintln!("seeding {} centres, {} first-dose places…", plan.centres.len(), scenario.places);
    seed::publish_slots(&plan, &platform.slot_inventory).await.context("seeding slots")?;
    let db = match &platform.database {
        Some(url) => Some(creneau_kit::db::connect(&DatabaseSettings::new(url)).await?),
        None => None,
    };

    // The clock starts now: T is `opens_in` away, centres go public at T.
    let epoch = Instant::now();
    let started_at = Utc::now();
    let opens_at = epoch + scenario.opens_in;
    let opens_at_utc = started_at + scenario.opens_in;
    seed::publish_centres(&plan, &platform.centre_directory, opens_at_utc).await.context("publishing centres")?;
    let browser = Browser::new(&platform.gateway, scenario.connections, scenario.request_timeout, epoch)?;
    let crowd = Arc::new(Crowd { browser, scenario: scenario.clone(), opens_at });
    let done = Arc::new(AtomicBool::new(false));
    let watched = monitor::Watched {
        services: platform.services.clone(),
        db: db.clone().map(|db| (db, plan.second_doses_from)),
        citizens: scenario.citizens as u64,
    };
    let monitor = tokio::spawn(monitor::watch(watched, crowd.clone(), done.clone()));
    let faulted = probes::Faulted::default();
    let (probing, injecting) = match &platform.services {
        Some(services) => (
            Some(tokio::spawn(probes::poll(services.clone(), faulted.clone(), done.clone()))),
            Some(tokio::spawn(faults::inject(o.faults.clone(), services.clone(), faulted, epoch))),
        ),
        None => (None, None),
    };

    let schedule = arrivals::schedule(scenario, &mut rng);
    let mut citizens = tokio::task::JoinSet::new();
    for (index, at) in schedule.into_iter().enumerate() {
        tokio::time::sleep_until((epoch + at).into()).await;
        citizens.spawn(citizen::live(crowd.clone(), index, Instant::now()));
    }
    let mut records: Vec<CitizenRecord> = Vec::with_capacity(scenario.citizens);
    let mut samples: Vec<Sample> = Vec::new();
    while let Some(joined) = citizens.join_next().await {
        let (record, mine) = joined.context("a citizen task panicked")?;
        records.push(record);
        samples.extend(mine);
    }
    // Faults that outlast the crowd end before the run does: what they
    // held back must still arrive.
    let mut injected = match injecting {
        Some(injecting) => injecting.await?,
        None => Vec::new(),
    };
    let delivery = match (&db, &platform.services) {
        (Some(db), Some(services)) => {
            let patience = Duration::from_secs(120);
            Some(delivery::check(db, &services.maildir, patience).await.context("checking deliveries")?)
        }
        _ => None,
    };
    done.store(true, Relaxed);
    let ticks = monitor.await?;
    let probes = match probing {
        Some(probing) => probing.await?,
        None => BTreeMap::new(),
    };
    analysis::recoveries(&mut injected, &records);
    let duration_s = epoch.elapsed().as_secs_f64();
    let opens_ms = scenario.opens_in.as_millis() as u32;

    let seconds = analysis::series(&samples, &records, &ticks, opens_ms);
    let centres: analysis::Centres = plan.centres.iter().map(|c| (c.id.clone(), (c.lat, c.lon))).collect();
    let selling = analysis::selling(&records, &seconds, &ticks, opens_ms, &centres);
    let opens_s = scenario.opens_in.as_secs_f64();
    let (cpu_mean, cpu_peak) = analysis::cpu_over(&ticks, opens_s, opens_s + selling.window_s.max(1.0));
    let mut statuses = BTreeMap::new();
    for s in &samples {
        *statuses.entry(s.label()).or_insert(0) += 1;
    }
    let citizens = analysis::fates(&records);
    let generator = analysis::generator(scenario, &samples, &ticks, &cpu_mean, &cpu_peak);
    let (ledger, invariants) = match &db {
        Some(db) => (
            Some(checks::ledger(db, &records).await?),
            Some(creneau_slot_inventory::invariants::check(db, Utc::now()).await?),
        ),
        None => (None, None),
    };
    let report = Report {
        scenario: scenario.clone(),
        target: o.target.clone().unwrap_or_else(|| "a fresh platform (one process per service)".into()),
        started_at: started_at.to_rfc3339(),
        duration_s,
        places_offered: Some(plan.centres.iter().map(seed::CentrePlan::places).sum()),
        definite_answers: records.iter().filter(|r| r.fate.is_definite()).count() as u64,
        citizens,
        selling,
        endpoints: analysis::endpoints(&samples),
        statuses,
        unexpected_answers: Live::get(&crowd.browser.live.unexpected),
        listen_overflows: ticks.iter().map(|t| t.listen_overflows).sum(),
        generator,
        cpu_mean,
        cpu_peak,
        baseline: None,
        ledger,
        invariants,
        faults: injected,
        probes,
        delivery,
        room: waiting::room(&records, &ticks, opens_ms),
        series: seconds,
    };
    Ok(Run { report, opens_s, ticks })
}

/// The baseline (once the services are stopped, so it has the machine to
/// itself), then the summary, JSON and chart.
async fn finish(o: &Options, run: Run) -> anyhow::Result<Report> {
    let mut report = run.report;
    if !o.no_baseline {
        // pgbench gets as many connections as slot-inventory's pool: the
        // concurrency at which bookings reach the database.
        let clients = DatabaseSettings::new(&o.postgres).pool_size() as usize;
        let transactions = (report.selling.bookings as usize).clamp(2_000, 20_000);
        eprintln!("pgbench baseline: {transactions} booking transactions at {clients} clients…");
        let (tps, latency): (f64, Latency) = baseline(&o.postgres, clients, transactions).await?;
        report.baseline = Some(Baseline {
            transaction: "slot-inventory's Book of one single-dose place, statement for statement",
            clients,
            transactions,
            pgbench_tps: tps,
            pgbench_p50_ms: latency.p50.as_secs_f64() * 1000.0,
            pgbench_p99_ms: latency.p99.as_secs_f64() * 1000.0,
            ratio: report.selling.bookings_per_s / tps,
        });
    }
    report.print();
    let stem = format!("rush-{}", serde_json::to_value(report.scenario.preset)?.as_str().unwrap_or("custom"));
    let json = o.out.join(format!("{stem}.json"));
    report.write_json(&json)?;
    let svg = o.out.join(format!("{stem}.svg"));
    let title = format!(
        "Créneau rush: {} citizens, {} places, {} centres — {:.0} bookings/s",
        report.citizens.values().sum::<u64>(),
        report.places_offered.unwrap_or(0),
        report.scenario.centres,
        report.selling.bookings_per_s
    );
    chart::draw(&svg, &title, &report.series, &run.ticks, run.opens_s, &report.faults)?;
    println!();
    println!("  report: {}", json.display());
    println!("  chart:  {}", svg.display());
    Ok(report)
}
