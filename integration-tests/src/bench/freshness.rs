//! How fresh search stays while bookings pour in: bookings at a steady
//! rate (500/s by default) spread over many centres, and meanwhile probes
//! that each take the last place of a centre and time how long the
//! gateway's centre page keeps offering it. Prints the achieved booking
//! rate and the probes' p50 / p99 / max.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use creneau::{Databases, Platform, PlatformConfig};
use creneau_proto::centre_directory::v1::{
    Centre, UpsertCentreRequest, centre_directory_client::CentreDirectoryClient,
};
use creneau_proto::slot_inventory::v1::{
    BookRequest, Citizen, CreateSlotsRequest, NewSlot, slot_inventory_client::SlotInventoryClient,
};
use sea_orm::{ConnectionTrait, Database};

use super::stats::{Latency, ms};

#[derive(Debug, clap::Args)]
pub struct Options {
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Bookings a second in the background.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Centres the background bookings spread over.
    #[arg(long, default_value_t = 500)]
    centres: usize,
    /// Last places taken and timed.
    #[arg(long, default_value_t = 100)]
    probes: usize,
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let o = &o;
    super::on_scratch_database(&o.postgres, |url| async move { bench(o, &url).await }).await
}

fn centre(id: &str) -> Centre {
    Centre {
        id: id.into(),
        name: format!("Centre {id}"),
        address: "1 place d'Armes".into(),
        postcode: "57000".into(),
        city: "Metz".into(),
        department: "57".into(),
        lat: 49.1193,
        lon: 6.1757,
        vaccines: vec!["janssen".into()],
        accessible: true,
        publish_at: "2021-01-18T07:00:00Z".into(),
        ..Default::default()
    }
}

fn booking(slot_id: String, n: usize, attestation: &str) -> BookRequest {
    BookRequest {
        slot_id,
        citizen: Some(Citizen {
            first_name: format!("Fresh{n}"),
            last_name: "Ness".into(),
            birth_date: "1940-01-01".into(),
            email: Some("fresh@example.fr".into()),
            phone: None,
            language: "fr".into(),
        }),
        attestation: attestation.to_owned(),
        idempotency_key: format!("fresh-{n}"),
        ..Default::default()
    }
}

async fn bench(o: &Options, url: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let platform =
        Platform::start(PlatformConfig::new(Databases::Shared(url.to_owned()), dir.path().join("maildir"))).await?;
    let http = reqwest::Client::new();
    let base = platform.gateway_url();
    let eligibility: serde_json::Value = http
        .post(format!("{base}/api/v1/eligibility"))
        .json(&serde_json::json!({"birth_date": "1940-01-01", "conditions": [], "dose": 1}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let attestation = eligibility["attestation"].as_str().context("an attestation")?.to_owned();

    // Background load: slots with room for every booking of the run, of a
    // single-dose vaccine (a booking is one appointment).
    let db = Database::connect(url).await?;
    db.execute_unprepared(&format!(
        "INSERT INTO slots (id, centre_id, vaccine, starts_at, ends_at, capacity, booked, created_at, status) \
         SELECT 'load-' || c || '-' || h, 'load-' || c, 'janssen', \
                date_trunc('day', now()) + interval '2 days' + (h || ' hours')::interval, \
                date_trunc('day', now()) + interval '2 days' + (h || ' hours 15 minutes')::interval, \
                100000, 0, now(), 'open' \
         FROM generate_series(1, {}) c, generate_series(8, 11) h",
        o.centres
    ))
    .await?;
    let mut directory =
        CentreDirectoryClient::new(creneau_kit::client::channel(&platform.grpc_url("centre-directory"))?);
    let mut inventory = SlotInventoryClient::new(creneau_kit::client::channel(&platform.grpc_url("slot-inventory"))?);
    let mut probes = Vec::new();
    let start = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
    for p in 0..o.probes {
        let id = format!("probe-{p}");
        directory.upsert_centre(UpsertCentreRequest { centre: Some(centre(&id)) }).await?;
        let created = inventory
            .create_slots(CreateSlotsRequest {
                centre_id: id.clone(),
                slots: vec![NewSlot {
                    vaccine: "janssen".into(),
                    starts_at: start.to_rfc3339(),
                    ends_at: (start + chrono::Duration::minutes(15)).to_rfc3339(),
                    capacity: 1,
                }],
            })
            .await?
            .into_inner();
        probes.push((id, created.slots[0].id.clone()));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stop = Arc::new(tokio::sync::Notify::new());
    let booked = Arc::new(AtomicUsize::new(0));
    let load = {
        let (inventory, attestation, stop, booked) =
            (inventory.clone(), attestation.clone(), stop.clone(), booked.clone());
        let (rate, centres) = (o.rate, o.centres);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = 0usize;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = stop.notified() => return,
                }
                n += 1;
                let slot = format!("load-{}-{}", 1 + (n * 7919) % centres, 8 + n % 4);
                let (mut inventory, request, booked) =
                    (inventory.clone(), booking(slot, n, &attestation), booked.clone());
                tokio::spawn(async move {
                    if inventory.book(request).await.is_ok() {
                        booked.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        })
    };
    // Let the load settle, then probe one centre after another.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let began = Instant::now();
    let before = booked.load(Ordering::Relaxed);
    let mut samples = Vec::new();
    for (i, (centre, slot)) in probes.iter().enumerate() {
        let page = format!("{base}/api/v1/centres/{centre}");
        let offered = |body: &serde_json::Value| body["available_slots_7d"].as_u64().unwrap_or(0) > 0;
        let body: serde_json::Value = http.get(&page).send().await?.json().await?;
        anyhow::ensure!(offered(&body), "{centre} should offer its place before the probe");
        inventory.book(booking(slot.clone(), 10_000_000 + i, &attestation)).await?;
        let booked_at = Instant::now();
        loop {
            let body: serde_json::Value = http.get(&page).send().await?.json().await?;
            if !offered(&body) {
                samples.push(booked_at.elapsed());
                break;
            }
            anyhow::ensure!(booked_at.elapsed() < Duration::from_secs(30), "{centre} still offered after 30 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let elapsed = began.elapsed();
    let rate = (booked.load(Ordering::Relaxed) - before) as f64 / elapsed.as_secs_f64();
    stop.notify_one();
    load.await?;
    let l = Latency::of(samples);
    println!(
        "freshness: {} probes while {:.0} bookings/s ran (asked {}/s over {} centres): a taken last place \
         left the centre page after p50 {}, p99 {}, max {}",
        o.probes,
        rate,
        o.rate,
        o.centres,
        ms(l.p50),
        ms(l.p99),
        ms(l.max)
    );
    platform.stop().await
}
