//! Graceful shutdown of a gRPC service: on SIGTERM, health turns
//! NOT_SERVING, new connections are refused, and calls in flight finish
//! within the grace period — or are abandoned when it runs out.

use std::time::{Duration, Instant};

use chrono::{Duration as Span, Utc};
use creneau_kit::attestation::Signer;
use creneau_kit::testing::{Backend, TestDatabase};
use creneau_kit::{ServerSettings, TelemetrySettings};
use creneau_proto::slot_inventory::v1::{self as pb, slot_inventory_client::SlotInventoryClient};
use creneau_slot_inventory::{Application, Settings, SlotInventorySettings};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement, TransactionTrait};
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const IN_FLIGHT: usize = 50;

struct Service {
    app: Option<Application>,
    port: u16,
    db: DatabaseConnection,
    signer: Signer,
    _database: TestDatabase,
}

/// slot-inventory on a fresh PostgreSQL database, with `grace`.
async fn service(grace: Duration) -> Option<Service> {
    creneau_kit::telemetry::init_for_tests();
    let (database, db) = TestDatabase::migrated(Backend::Postgres, "slot-inventory").await?;
    let signer = Signer::parse(&Signer::generate_spec("test")).unwrap();
    let settings = Settings {
        server: ServerSettings { grace_period_ms: grace.as_millis() as u64, ..ServerSettings::local(0) },
        database: database.settings(),
        telemetry: TelemetrySettings::default(),
        slot_inventory: SlotInventorySettings {
            relay_interval_ms: 200,
            ..SlotInventorySettings::new(signer.public_spec())
        },
    };
    let app = Application::build(settings).await.unwrap();
    let port = app.port();
    Some(Service { app: Some(app), port, db, signer, _database: database })
}

impl Service {
    async fn channel(&self) -> Channel {
        creneau_kit::testing::channel(self.port).await
    }

    async fn slot(&self) -> String {
        let start = (Utc::now() + Span::days(1)).date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
        let mut client = SlotInventoryClient::new(self.channel().await);
        let created = client
            .create_slots(pb::CreateSlotsRequest {
                centre_id: "metz-drain".into(),
                slots: vec![pb::NewSlot {
                    vaccine: "janssen".into(),
                    starts_at: start.to_rfc3339(),
                    ends_at: (start + Span::minutes(15)).to_rfc3339(),
                    capacity: 200,
                }],
            })
            .await
            .unwrap();
        created.into_inner().slots.remove(0).id
    }

    /// Holds the slot's row lock, as a long booking would: every booking of
    /// the slot waits until the transaction ends.
    async fn lock(&self, slot: &str) -> DatabaseTransaction {
        let txn = self.db.begin().await.unwrap();
        txn.execute_unprepared(&format!("SELECT id FROM slots WHERE id = '{slot}' FOR UPDATE")).await.unwrap();
        txn
    }

    /// Starts `IN_FLIGHT` bookings of `slot`, and returns once they are all
    /// waiting (on the row lock, or on a database connection behind it).
    async fn book_all(&self, slot: &str) -> Vec<JoinHandle<Result<pb::Booking, tonic::Status>>> {
        let client = SlotInventoryClient::new(self.channel().await);
        let calls = (0..IN_FLIGHT)
            .map(|i| {
                let mut client = client.clone();
                let birth = format!("19{:02}-03-04", 30 + i % 40);
                let request = pb::BookRequest {
                    slot_id: slot.to_owned(),
                    dose: 1,
                    citizen: Some(pb::Citizen {
                        first_name: format!("Patient{i}"),
                        last_name: "Drain".into(),
                        birth_date: birth.clone(),
                        email: Some(format!("patient{i}@example.fr")),
                        phone: None,
                        language: "fr".into(),
                    }),
                    attestation: self.signer.sign(birth.parse().unwrap(), 1, Utc::now(), Span::minutes(30)),
                    idempotency_key: format!("drain-{i}"),
                    ..Default::default()
                };
                tokio::spawn(async move { client.book(request).await.map(tonic::Response::into_inner) })
            })
            .collect();
        // The pool's 20 connections all wait on the lock, the rest on them.
        let waiting =
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
        for _ in 0..200 {
            let row = self
                .db
                .query_one_raw(Statement::from_string(self.db.get_database_backend(), waiting.to_owned()))
                .await
                .unwrap()
                .unwrap();
            if row.try_get_by_index::<i64>(0).unwrap() >= 20 {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("bookings never queued up on the lock");
    }
}

async fn watch_health(channel: Channel) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    let mut health = HealthClient::new(channel);
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    loop {
        let status = watch.message().await.unwrap().unwrap().status;
        if status == ServingStatus::Serving as i32 {
            return watch;
        }
    }
}

async fn refuses_connections(port: u16) -> bool {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_turns_health_off_and_drains_calls_in_flight() {
    // A SIGTERM handler of the test's own first: the signal must never meet
    // the default action, which would end the whole test process.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let grace = Duration::from_secs(10);
    let Some(mut s) = service(grace).await else { return };
    let app = s.app.take().unwrap();
    let serving = tokio::spawn(async move {
        let result = app.run_until_stopped().await;
        (result, Instant::now())
    });
    let slot = s.slot().await;
    let mut health = watch_health(s.channel().await).await;
    let lock = s.lock(&slot).await;
    let calls = s.book_all(&slot).await;

    let signalled = Instant::now();
    let killed = std::process::Command::new("kill").args(["-TERM", &std::process::id().to_string()]).status();
    assert!(killed.unwrap().success());
    sigterm.recv().await;

    // Health goes first, while every call is still in flight.
    let flipped = async {
        loop {
            let status = health.message().await.unwrap().expect("the watch stays open while draining").status;
            if status != ServingStatus::Serving as i32 {
                return status;
            }
        }
    };
    let status = tokio::time::timeout(Duration::from_secs(2), flipped).await.expect("health flips at once");
    assert_eq!(status, ServingStatus::NotServing as i32, "health flips before the drain");
    let not_serving_after = signalled.elapsed();
    assert!(calls.iter().all(|c| !c.is_finished()), "no call finished before health flipped");
    drop(health);
    assert!(refuses_connections(s.port).await, "no new connection once draining");
    assert!(!serving.is_finished(), "the server waits for its calls");

    // The calls get their answers once the lock goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = Instant::now();
    lock.rollback().await.unwrap();
    let mut booked = 0;
    for call in calls {
        call.await.unwrap().expect("a call in flight at SIGTERM completes");
        booked += 1;
    }
    let (result, stopped) = serving.await.unwrap();
    result.expect("a drained server stops cleanly");
    let total = stopped - signalled;
    println!(
        "SIGTERM: NOT_SERVING after {not_serving_after:?}; {booked} calls drained, server stopped {:?} after the \
         last call could proceed and {total:?} after SIGTERM (grace {grace:?})",
        stopped - released
    );
    assert_eq!(booked, IN_FLIGHT);
    assert!(total < grace, "stopped within the grace period");
    let count =
        s.db.query_one_raw(Statement::from_string(
            s.db.get_database_backend(),
            "SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(count, IN_FLIGHT as i64, "every drained booking is stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grace_period_bounds_the_drain() {
    let grace = Duration::from_millis(800);
    let Some(mut s) = service(grace).await else { return };
    let app = s.app.take().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let slot = s.slot().await;
    let lock = s.lock(&slot).await;
    let calls = s.book_all(&slot).await;

    let asked = Instant::now();
    stop.send(()).unwrap();
    serving.await.unwrap().expect("running out of grace is not an error");
    let took = asked.elapsed();
    println!("stuck calls: server stopped {took:?} after being asked (grace {grace:?})");
    assert!(took >= grace && took < grace + Duration::from_secs(1), "stops when the grace period ends: {took:?}");
    lock.rollback().await.unwrap();
    for call in calls {
        let _ = call.await;
    }
}
