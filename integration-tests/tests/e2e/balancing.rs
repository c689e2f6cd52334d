//! Several slot-inventory replicas behind one gateway: calls spread over
//! all of them, a replica killed mid-run costs no booking, and a replica
//! that comes up later gets its share.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{Duration as Span, Utc};
use creneau::{Databases, Platform, PlatformConfig};
use creneau_kit::testing::TestDatabase;
use creneau_proto::centre_directory::v1::{
    Centre, UpsertCentreRequest, centre_directory_client::CentreDirectoryClient,
};
use creneau_proto::slot_inventory::v1::{CreateSlotsRequest, NewSlot, slot_inventory_client::SlotInventoryClient};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::booking_body;

const SERVICE: &str = "creneau.slot_inventory.v1.SlotInventory";
const REPLICAS: usize = 3;
const SLOTS: usize = 20;
const CAPACITY: u32 = 100;
const ROUND: usize = 600;
const IN_FLIGHT: usize = 16;
const BIRTH_DATES: usize = 40;

struct Cluster {
    platform: Platform,
    http: reqwest::Client,
    slots: Vec<String>,
    attestations: Vec<(String, String)>,
    database: TestDatabase,
    _dir: tempfile::TempDir,
}

/// Three replicas on one PostgreSQL database and a spare port, which the
/// gateway and the directory know from the start as a static list.
async fn cluster() -> Option<Cluster> {
    creneau_kit::telemetry::init_for_tests();
    let database = TestDatabase::postgres().await?;
    let dir = tempfile::tempdir().unwrap();
    let mut config = PlatformConfig::new(Databases::Shared(database.url()), dir.path().join("maildir"));
    config.slot_inventory_replicas = REPLICAS;
    config.slot_inventory_spares = 1;
    let platform = Platform::start(config).await.unwrap();
    assert_eq!(platform.slot_inventory_url().split(',').count(), REPLICAS + 1);

    let mut centres =
        CentreDirectoryClient::new(creneau_kit::testing::channel(platform.port("centre-directory")).await);
    centres
        .upsert_centre(UpsertCentreRequest {
            centre: Some(Centre {
                id: "metz-replicas".into(),
                name: "Centre de vaccination des répliques".into(),
                address: "3 avenue Ney".into(),
                postcode: "57000".into(),
                city: "Metz".into(),
                department: "57".into(),
                lat: 49.1156,
                lon: 6.1718,
                vaccines: vec!["janssen".into()],
                accessible: true,
                phone: "03 87 00 00 00".into(),
                publish_at: "2021-01-18T07:00:00Z".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let start = (Utc::now() + Span::days(1)).date_naive().and_hms_opt(8, 0, 0).unwrap().and_utc();
    let mut inventory = SlotInventoryClient::new(creneau_kit::testing::channel(platform.port("slot-inventory")).await);
    let slots = inventory
        .create_slots(CreateSlotsRequest {
            centre_id: "metz-replicas".into(),
            slots: (0..SLOTS as i64)
                .map(|i| NewSlot {
                    vaccine: "janssen".into(),
                    starts_at: (start + Span::minutes(15 * i)).to_rfc3339(),
                    ends_at: (start + Span::minutes(15 * i + 15)).to_rfc3339(),
                    capacity: CAPACITY,
                })
                .collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .slots
        .into_iter()
        .map(|s| s.id)
        .collect();

    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let mut attestations = Vec::new();
    for i in 0..BIRTH_DATES {
        let birth = format!("19{:02}-{:02}-{:02}", 20 + i % 30, 1 + i % 12, 1 + i % 28);
        let response = http
            .post(format!("{}/api/v1/eligibility", platform.gateway_url()))
            .json(&json!({"birth_date": birth, "conditions": [], "dose": 1}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        attestations.push((birth, body["attestation"].as_str().expect("eligible").to_owned()));
    }
    Some(Cluster { platform, http, slots, attestations, database, _dir: dir })
}

/// Books citizens `range` through the gateway, `IN_FLIGHT` at a time, each
/// its own person and idempotency key; returns each one's HTTP status.
async fn book(
    http: &reqwest::Client,
    gateway: &str,
    slots: &[String],
    attestations: &[(String, String)],
    range: std::ops::Range<usize>,
    done: &AtomicUsize,
) -> Vec<u16> {
    futures::stream::iter(range)
        .map(|i| {
            let (birth, attestation) = &attestations[i % attestations.len()];
            let body = booking_body(&slots[i % slots.len()], attestation, &format!("Citoyen{i}"), "Replique", birth);
            async move {
                let response = http
                    .post(format!("{gateway}/api/v1/bookings"))
                    .header("idempotency-key", format!("balancing-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                if status != 201 && status != 200 {
                    eprintln!("citizen {i}: {status} {}", response.text().await.unwrap_or_default());
                }
                done.fetch_add(1, Ordering::SeqCst);
                status
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

fn tally(statuses: &[u16]) -> BTreeMap<u16, usize> {
    let mut by_status = BTreeMap::new();
    for status in statuses {
        *by_status.entry(*status).or_default() += 1;
    }
    by_status
}

async fn wait_until(done: &AtomicUsize, count: usize) {
    while done.load(Ordering::SeqCst) < count {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn count(c: &Cluster, sql: &str) -> i64 {
    let db = creneau_kit::db::connect(&c.database.settings()).await.unwrap();
    let row =
        db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap().unwrap();
    let n = row.try_get_by_index::<i64>(0).unwrap();
    db.close().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn bookings_spread_over_replicas_and_survive_one_dying() {
    let Some(mut c) = cluster().await else { return };
    let gateway = c.platform.gateway_url();

    // Round one: every replica takes a fair share.
    let done = AtomicUsize::new(0);
    let first = book(&c.http, &gateway, &c.slots, &c.attestations, 0..ROUND, &done).await;
    assert_eq!(tally(&first), BTreeMap::from([(201, ROUND)]), "every booking made");
    let shares: Vec<u64> =
        (0..REPLICAS).map(|i| c.platform.replica_metrics(i).unwrap().grpc_total(SERVICE, "Book")).collect();
    println!("round one, Book calls per replica: {shares:?} of {ROUND}");
    assert_eq!(shares.iter().sum::<u64>(), ROUND as u64, "one call per booking: nothing retried");
    for share in &shares {
        assert!(*share as f64 >= 0.2 * ROUND as f64, "each replica serves at least 20%: {shares:?}");
    }

    // Round two: replica 2 is killed a quarter of the way in, and the spare
    // (the list's fourth address) comes up a third of the way in.
    let killed = c.platform.replica_metrics(2).unwrap();
    let killed_before = killed.grpc_total(SERVICE, "Book");
    let done = AtomicUsize::new(0);
    let bookings = book(&c.http, &gateway, &c.slots, &c.attestations, ROUND..2 * ROUND, &done);
    let began = std::time::Instant::now();
    let chaos = async {
        wait_until(&done, ROUND / 4).await;
        c.platform.kill_replica(2).unwrap();
        println!("replica 2 killed at {:?}", began.elapsed());
        wait_until(&done, ROUND / 3).await;
        c.platform.start_replica(REPLICAS).await.unwrap();
        println!("replica {REPLICAS} started at {:?}", began.elapsed());
    };
    let (second, ()) = tokio::join!(bookings, chaos);
    let by_status = tally(&second);
    println!("round two, statuses: {by_status:?} in {:?}", began.elapsed());
    assert!(
        by_status.keys().all(|s| *s == 201 || *s == 200),
        "no booking fails: those cut on the killed replica are retried under their key"
    );
    assert_eq!(second.len(), ROUND);

    let calls = |i: usize| c.platform.replica_metrics(i).map_or(0, |m| m.grpc_total(SERVICE, "Book"));
    let (killed_ok, killed_cut) = (
        killed.grpc_count(SERVICE, "Book", tonic::Code::Ok) - killed_before,
        killed.grpc_count(SERVICE, "Book", tonic::Code::Cancelled),
    );
    let spare = calls(REPLICAS);
    println!(
        "round two, Book calls: replica 0 {}, replica 1 {}, killed replica answered {killed_ok} \
         and had {killed_cut} cut in flight, new replica {spare}",
        calls(0) - shares[0],
        calls(1) - shares[1],
    );

    // Round three: the new replica is one of three again.
    let before: Vec<u64> = [0, 1, REPLICAS].iter().map(|i| calls(*i)).collect();
    let done = AtomicUsize::new(0);
    let third = book(&c.http, &gateway, &c.slots, &c.attestations, 2 * ROUND..3 * ROUND, &done).await;
    assert_eq!(tally(&third), BTreeMap::from([(201, ROUND)]));
    let shares: Vec<u64> = [0, 1, REPLICAS].iter().zip(&before).map(|(i, b)| calls(*i) - b).collect();
    println!("round three, Book calls on replicas 0, 1 and the new one: {shares:?} of {ROUND}");
    for share in &shares {
        assert!(*share as f64 >= 0.2 * ROUND as f64, "the new replica takes its share: {shares:?}");
    }

    // Each citizen booked exactly once, whatever replica answered or died.
    let total = 3 * ROUND;
    assert_eq!(count(&c, "SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'").await, total as i64);
    assert_eq!(count(&c, "SELECT COUNT(*) FROM slots WHERE booked > capacity").await, 0);

    // The gateway counts its routes by template.
    let page = c.http.get(format!("{gateway}/metrics")).send().await.unwrap().text().await.unwrap();
    let created = page
        .lines()
        .find(|l| l.starts_with(r#"http_server_requests_total{method="POST",route="/api/v1/bookings",status="201"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(created >= (total - by_status.get(&200).copied().unwrap_or(0)) as f64, "{page}");
    assert!(!page.contains("Citoyen") && !page.contains("balancing-"), "no personal data in metrics");

    c.platform.stop().await.unwrap();
}
