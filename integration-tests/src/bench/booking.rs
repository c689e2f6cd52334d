//! The booking benchmark. One fresh PostgreSQL database; slots seeded with
//! room for every booking, so every transaction commits:
//!
//! 1. `pgbench` runs, at the given concurrency, the statements
//!    slot-inventory's `Book` runs for a single-dose booking (the reads
//!    before the transaction included);
//! 2. `Book` is driven over gRPC by as many concurrent clients, against
//!    slot-inventory started in this process on the same database.
//!
//! Both throughputs, their ratio and latency percentiles are printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use creneau_kit::attestation::Signer;
use creneau_kit::statistics::StatisticsKeeper;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
use creneau_proto::slot_inventory::v1::{BookRequest, Citizen, slot_inventory_client::SlotInventoryClient};
use sea_orm::{ConnectionTrait, Database};

use super::stats::{Latency, ms};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// PostgreSQL server; a database is created on it for the run.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Concurrent clients, for pgbench and for gRPC alike.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Bookings per side.
    #[arg(long, default_value_t = 8000)]
    bookings: usize,
    /// Slots the bookings spread over (randomly, like citizens).
    #[arg(long, default_value_t = 500)]
    slots: usize,
    /// HTTP/2 connections the clients share, as a gateway's channel to a
    /// replica would hold.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// slot-inventory's database pool; by default its own default (20 on
    /// PostgreSQL), as deployed: callers beyond it wait for a connection.
    #[arg(long)]
    pool: Option<u32>,
    /// Runs, each on fresh databases; with more than one, the ratios'
    /// median and range are printed at the end. The machine's speed may
    /// drift from one run to the next, so each ratio is taken within its run.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Keep the database afterwards.
    #[arg(long)]
    keep: bool,
}

/// The statements of one single-dose booking, as slot-inventory runs them.
const PGBENCH_SCRIPT: &str = r#"
\set slot random(1, :nslots)
\set n random(1, 1000000000000)
SELECT (SELECT COUNT(*) FROM idempotency_keys k WHERE k."key" = 'pgb-' || :client_id || '-' || :n AND (k.expires_at IS NULL OR k.expires_at > now())) AS known, s.booked, s.capacity, s.status FROM (SELECT 1 AS one) AS one LEFT JOIN slots s ON s.id = 'bench-' || lpad(:slot::text, 6, '0');
BEGIN;
INSERT INTO idempotency_keys ("key", request_hash, booking_id, secret, created_at, expires_at) VALUES ('pgb-' || :client_id || '-' || :n, md5(random()::text), 'pgb-b-' || :client_id || '-' || :n, md5(random()::text), now(), now() + interval '1 day') ON CONFLICT ("key") DO UPDATE SET request_hash = excluded.request_hash, booking_id = excluded.booking_id, secret = excluded.secret, created_at = excluded.created_at, expires_at = excluded.expires_at WHERE idempotency_keys.expires_at IS NOT NULL AND idempotency_keys.expires_at <= now();
SELECT * FROM slots WHERE id = 'bench-' || lpad(:slot::text, 6, '0') FOR UPDATE;
SELECT holds.slot_id, COUNT(holds.id) AS held FROM holds WHERE holds.slot_id IN ('bench-' || lpad(:slot::text, 6, '0')) AND holds.state = 'live' AND holds.expires_at > now() GROUP BY holds.slot_id;
UPDATE slots SET booked = booked + 1 WHERE slots.id = 'bench-' || lpad(:slot::text, 6, '0') AND slots.booked < slots.capacity;
INSERT INTO bookings (id, reference, secret_hash, identity_key, status, first_name, last_name, birth_date, email, phone, language, created_at, cancelled_at, series) VALUES ('pgb-b-' || :client_id || '-' || :n, 'P' || substr(md5(random()::text), 1, 12), md5(random()::text), md5(random()::text), 'confirmed', 'Bench', 'Client', '1940-01-01', 'bench@example.fr', NULL, 'fr', now(), NULL, 'primary');
INSERT INTO appointments (booking_id, dose, slot_id, centre_id, vaccine, starts_at, ends_at) VALUES ('pgb-b-' || :client_id || '-' || :n, 1, 'bench-' || lpad(:slot::text, 6, '0'), 'bench-centre', 'janssen', now() + interval '1 day', now() + interval '1 day 15 minutes');
INSERT INTO outbox (event_id, kind, payload, occurred_at, lease_until, published_at, attempts) VALUES ('pgb-e-' || :client_id || '-' || :n, 'booking.confirmed', repeat('x', 400), now(), NULL, NULL, 0);
COMMIT;
"#;

pub async fn run(o: Options) -> anyhow::Result<()> {
    let mut ratios = Vec::new();
    for run in 1..=o.runs.max(1) {
        if o.runs > 1 {
            println!("run {run} of {}", o.runs);
        }
        ratios.push(run_once(&o).await?);
    }
    if ratios.len() > 1 {
        ratios.sort_by(f64::total_cmp);
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!("ratio over {} runs    : median {:.2} ({})", ratios.len(), ratios[ratios.len() / 2], shown.join(", "));
    }
    Ok(())
}

/// One run; returns its ratio.
async fn run_once(o: &Options) -> anyhow::Result<f64> {
    // Each side gets a database of its own, seeded alike: the second side
    // must not inherit the first one's dead tuples and autovacuum work.
    let (pg_side, pg_db) = seeded(&o.postgres, "creneau_bench_pgbench", o.slots).await?;
    let (grpc_side, grpc_db) = seeded(&o.postgres, "creneau_bench_grpc", o.slots).await?;
    let result = bench(o, (&pg_side.url, &pg_db), (&grpc_side.url, &grpc_db)).await;
    pg_db.close().await?;
    grpc_db.close().await?;
    for side in [pg_side, grpc_side] {
        if o.keep {
            println!("database kept: {}", side.url);
        } else {
            side.drop().await?;
        }
    }
    result
}

/// A scratch database with slot-inventory's schema and `slots` bench
/// slots, vacuumed and analysed.
async fn seeded(
    server: &str,
    prefix: &str,
    slots: usize,
) -> anyhow::Result<(ScratchDatabase, sea_orm::DatabaseConnection)> {
    let scratch = ScratchDatabase::create(server, prefix).await?;
    let db = creneau_kit::db::connect(&DatabaseSettings::new(&scratch.url)).await?;
    creneau_migrations::up("slot-inventory", &db).await?;
    seed_bench_slots(&db, slots).await?;
    Ok((scratch, db))
}

/// A database made for one run on a PostgreSQL server, dropped after it.
pub struct ScratchDatabase {
    admin: sea_orm::DatabaseConnection,
    name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub async fn create(server: &str, prefix: &str) -> anyhow::Result<Self> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(format!("{server}/postgres")).await.context("connecting to PostgreSQL")?;
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
        Ok(Self { admin, url: format!("{server}/{name}"), name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        self.admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
        Ok(())
    }
}

/// pgbench alone, on a scratch database of its own: slot-inventory's
/// booking transaction at `clients` concurrency, the physical limit the
/// service is compared with.
pub async fn baseline(server: &str, clients: usize, transactions: usize) -> anyhow::Result<(f64, Latency)> {
    let slots = 500;
    let (scratch, db) = seeded(server, "creneau_baseline", slots).await?;
    let result = pgbench(clients, transactions, slots, (&scratch.url, &db)).await;
    db.close().await?;
    scratch.drop().await?;
    result
}

async fn seed_bench_slots(db: &sea_orm::DatabaseConnection, slots: usize) -> anyhow::Result<()> {
    let start = (Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d 09:00:00+00");
    db.execute_unprepared(&format!(
        "INSERT INTO slots (id, centre_id, vaccine, starts_at, ends_at, capacity, booked, created_at, status) \
         SELECT 'bench-' || lpad(i::text, 6, '0'), 'bench-centre', 'janssen', \
                TIMESTAMPTZ '{start}' + (i || ' minutes')::interval, \
                TIMESTAMPTZ '{start}' + (i || ' minutes')::interval + interval '15 minutes', 1000000, 0, now(), 'open' \
         FROM generate_series(1, {slots}) AS i"
    ))
    .await?;
    db.execute_unprepared("VACUUM ANALYZE").await?;
    Ok(())
}

type Side<'a> = (&'a str, &'a sea_orm::DatabaseConnection);

async fn bench(o: &Options, pg_side: Side<'_>, grpc_side: Side<'_>) -> anyhow::Result<f64> {
    println!(
        "booking benchmark: {} clients, {} bookings per side, {} slots, slot-inventory pool {}, one fresh database per side",
        o.clients,
        o.bookings,
        o.slots,
        DatabaseSettings { max_connections: o.pool, ..DatabaseSettings::new(grpc_side.0) }.pool_size(),
    );
    let pg = pgbench(o.clients, o.bookings, o.slots, pg_side).await?;
    println!(
        "pgbench (same SQL)      : {:>8.0} bookings/s   p50 {}   p99 {}   max {}",
        pg.0,
        ms(pg.1.p50),
        ms(pg.1.p99),
        ms(pg.1.max)
    );
    let grpc = grpc(o, grpc_side.0).await?;
    println!(
        "slot-inventory Book/gRPC: {:>8.0} bookings/s   p50 {}   p99 {}   max {}",
        grpc.0,
        ms(grpc.1.p50),
        ms(grpc.1.p99),
        ms(grpc.1.max)
    );
    println!("ratio service ÷ pgbench : {:.2}", grpc.0 / pg.0);
    let expected = (o.bookings / o.clients) * o.clients;
    for (side, db) in [("pgbench", pg_side.1), ("gRPC", grpc_side.1)] {
        let booked = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT SUM(booked) AS n FROM slots",
            ))
            .await?
            .and_then(|r| r.try_get::<i64>("", "n").ok())
            .unwrap_or(0);
        println!("places taken ({side:<7})  : {booked} (expected {expected})");
        if booked != expected as i64 {
            bail!("{side} took {booked} places for {expected} bookings");
        }
    }
    Ok(grpc.0 / pg.0)
}

fn pgbench_binary() -> anyhow::Result<PathBuf> {
    if let Ok(found) = which("pgbench") {
        return Ok(found);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin/pgbench")).filter(|p| p.exists()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().context("pgbench not found (it ships with PostgreSQL)")
}

fn which(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").context("no PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.exists()).context("not on PATH")
}

/// Throughput (transactions/s) and latencies of pgbench running the script.
/// The database's planner statistics are kept fresh as slot-inventory keeps
/// its own, so that both sides run on the same plans.
async fn pgbench(clients: usize, transactions: usize, slots: usize, side: Side<'_>) -> anyhow::Result<(f64, Latency)> {
    let (url, db) = side;
    let keeper = StatisticsKeeper::new(db.clone(), creneau_slot_inventory::GROWING_TABLES, Duration::from_secs(1))
        .map(|keeper| tokio::spawn(keeper.run()));
    let result = run_pgbench(clients, transactions, slots, url).await;
    if let Some(keeper) = keeper {
        keeper.abort();
    }
    result
}

async fn run_pgbench(clients: usize, transactions: usize, slots: usize, url: &str) -> anyhow::Result<(f64, Latency)> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("booking.sql");
    std::fs::write(&script, PGBENCH_SCRIPT)?;
    let per_client = (transactions / clients).max(1);
    let output = tokio::process::Command::new(pgbench_binary()?)
        .args(["-n", "-M", "prepared", "-j", "2", "-l"])
        .args(["-c", &clients.to_string(), "-t", &per_client.to_string()])
        .args(["-D", &format!("nslots={slots}")])
        .arg("--log-prefix")
        .arg(dir.path().join("log"))
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .await
        .context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("pgbench failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    }
    let tps = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .context("pgbench printed no tps")?;
    Ok((tps, Latency::of(pgbench_latencies(dir.path())?)))
}

/// pgbench's per-transaction log: the third field is the latency in µs.
fn pgbench_latencies(dir: &Path) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("log")) {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse::<u64>().ok()) {
                    samples.push(Duration::from_micros(us));
                }
            }
        }
    }
    Ok(samples)
}

/// Throughput and latencies of `Book` over gRPC, slot-inventory in this process.
async fn grpc(o: &Options, url: &str) -> anyhow::Result<(f64, Latency)> {
    let signer = Arc::new(Signer::parse(&Signer::generate_spec("bench"))?);
    let mut database = DatabaseSettings::new(url);
    database.max_connections = o.pool;
    let settings = creneau_slot_inventory::Settings {
        server: ServerSettings { concurrency_limit: 4096, ..ServerSettings::local(0) },
        database,
        telemetry: TelemetrySettings::default(),
        slot_inventory: creneau_slot_inventory::SlotInventorySettings::new(signer.public_spec()),
    };
    let app = creneau_slot_inventory::Application::build(settings).await?;
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    // A few HTTP/2 connections, as a gateway's balanced channel would hold.
    let mut channels = Vec::new();
    for _ in 0..o.connections.clamp(1, o.clients) {
        channels.push(SlotInventoryClient::new(creneau_kit::testing::channel(port).await));
    }
    let per_client = o.bookings / o.clients;
    // Requests are made before the clock starts: signing attestations is
    // eligibility's work, not Book's.
    let requests: Vec<Vec<BookRequest>> = (0..o.clients)
        .map(|c| {
            (0..per_client)
                .map(|i| {
                    let n = c * per_client + i;
                    BookRequest {
                        slot_id: format!("bench-{:06}", 1 + (n * 7919) % o.slots),
                        citizen: Some(Citizen {
                            first_name: format!("Bench{n}"),
                            last_name: "Client".into(),
                            birth_date: "1940-01-01".into(),
                            email: Some("bench@example.fr".into()),
                            phone: None,
                            language: "fr".into(),
                        }),
                        attestation: signer.sign(
                            "1940-01-01".parse().unwrap(),
                            1,
                            Utc::now(),
                            chrono::Duration::minutes(30),
                        ),
                        idempotency_key: format!("grpc-{n}"),
                        ..Default::default()
                    }
                })
                .collect()
        })
        .collect();
    let began = Instant::now();
    let tasks: Vec<_> = requests
        .into_iter()
        .enumerate()
        .map(|(c, mine)| {
            let mut client = channels[c % channels.len()].clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(mine.len());
                for request in mine {
                    let at = Instant::now();
                    client.book(request).await.map_err(|s| anyhow::anyhow!("Book failed: {s}"))?;
                    latencies.push(at.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    let elapsed = began.elapsed();
    let _ = stop.send(());
    server.await??;
    Ok((samples.len() as f64 / elapsed.as_secs_f64(), Latency::of(samples)))
}
