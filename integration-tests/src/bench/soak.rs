//! `creneau-bench soak`: the concurrency scenarios of the rush suite, again
//! and again, each on a fresh PostgreSQL database with slot-inventory in
//! this process, until at least `--attempts` booking attempts have been
//! made. Every round checks every invariant (and the outbox against what
//! clients were told); the first violation stops the soak with an error.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use anyhow::Context;
use creneau_kit::attestation::Signer;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
use creneau_proto::slot_inventory::v1::slot_inventory_client::SlotInventoryClient;
use creneau_slot_inventory::scenarios::{self, Tally, Target};

use super::booking::ScratchDatabase;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Stop once this many booking attempts have been made.
    #[arg(long, default_value_t = 1_000_000)]
    attempts: u64,
    /// PostgreSQL server: a fresh database per scenario run.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
}

type Scenario = for<'a> fn(&'a Target) -> futures::future::BoxFuture<'a, anyhow::Result<Tally>>;

/// Each scenario, and whether its holds and keys live two seconds.
fn scenarios() -> Vec<(&'static str, bool, Scenario)> {
    vec![
        ("uniform", false, |t| Box::pin(scenarios::uniform_demand(t))),
        ("hot-spot", false, |t| Box::pin(scenarios::everyone_wants_the_earliest_slot(t))),
        ("holds expiring", true, |t| Box::pin(scenarios::holds_expire_mid_run(t))),
        ("cancellations and reschedules", false, |t| Box::pin(scenarios::cancellations_and_reschedules_interleaved(t))),
        ("the same bookings changed at once", false, |t| Box::pin(scenarios::the_same_bookings_changed_at_once(t))),
        ("retries with the same key", false, |t| Box::pin(scenarios::retries_with_the_same_key(t))),
    ]
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let (mut attempts, mut bookings, mut runs) = (0u64, 0u64, 0u64);
    'soak: for round in 1.. {
        for (name, short_lived, scenario) in scenarios() {
            let scratch = ScratchDatabase::create(&o.postgres, "creneau_soak").await?;
            let outcome = run_one(&scratch.url, short_lived, scenario).await;
            scratch.drop().await?;
            let tally = outcome.with_context(|| format!("round {round}, {name}"))?;
            runs += 1;
            attempts += tally.attempts.load(Relaxed);
            bookings += tally.confirmed.load(Relaxed);
            println!(
                "[soak] round {round} · {name}: {} attempts · {attempts} in all, {bookings} bookings, {runs} runs, \
                 0 violations · {:.0} s",
                tally.attempts.load(Relaxed),
                started.elapsed().as_secs_f64()
            );
            if attempts >= o.attempts {
                break 'soak;
            }
        }
    }
    println!(
        "[soak] done: {attempts} booking attempts, {bookings} bookings, {runs} scenario runs on fresh databases, \
         every invariant held after each, in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run_one(url: &str, short_lived: bool, scenario: Scenario) -> anyhow::Result<Tally> {
    let db = creneau_kit::db::connect(&DatabaseSettings::new(url).for_migrations()).await?;
    creneau_migrations::up("slot-inventory", &db).await?;
    let signer = Arc::new(Signer::parse(&Signer::generate_spec("soak"))?);
    let ttl = if short_lived { 2 } else { 300 };
    let settings = creneau_slot_inventory::Settings {
        server: ServerSettings::local(0),
        database: DatabaseSettings::new(url),
        telemetry: TelemetrySettings::default(),
        slot_inventory: creneau_slot_inventory::SlotInventorySettings {
            hold_ttl_secs: ttl,
            idempotency_ttl_secs: if short_lived { ttl } else { 86_400 },
            ..creneau_slot_inventory::SlotInventorySettings::new(signer.public_spec())
        },
    };
    let app = creneau_slot_inventory::Application::build(settings).await?;
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let target = Target { client: SlotInventoryClient::new(creneau_kit::testing::channel(port).await), db, signer };
    let outcome = scenario(&target).await;
    let _ = stop.send(());
    server.await??;
    target.db.close().await?;
    outcome
}
