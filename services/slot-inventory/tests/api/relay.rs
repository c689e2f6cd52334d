//! The outbox relay against a real notification gRPC server (a recording
//! one, on port 0) that can be made to refuse.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use creneau_proto::notification::v1::event_outcome::Outcome;
use creneau_proto::notification::v1::notification_server::{Notification, NotificationServer};
use creneau_proto::notification::v1::{DeliverRequest, DeliverResponse, Event, EventOutcome, event::Kind};
use creneau_proto::operations::v1::dead_letters_client::DeadLettersClient;
use creneau_proto::operations::v1::{ListDeadLettersRequest, ReplayDeadLettersRequest};
use creneau_proto::slot_inventory::v1 as pb;
use sea_orm::ConnectionTrait;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::helpers::{TestApp, spawn_app_with};

#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
    down: Arc<AtomicBool>,
    /// Bookings whose events it rejects, one by one.
    refused: Arc<Mutex<HashSet<String>>>,
}

fn reference_of(event: &Event) -> String {
    match &event.kind {
        Some(Kind::BookingConfirmed(e)) => e.reference.clone(),
        Some(Kind::BookingCancelled(e)) => e.reference.clone(),
        Some(Kind::BookingMoved(e)) => e.reference.clone(),
        None => String::new(),
    }
}

#[tonic::async_trait]
impl Notification for Recorder {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable("down for the test"));
        }
        let refused = self.refused.lock().await.clone();
        let mut outcomes = Vec::new();
        for event in request.into_inner().events {
            let outcome = if refused.contains(&reference_of(&event)) {
                EventOutcome {
                    event_id: event.id,
                    outcome: Outcome::Rejected as i32,
                    reason: "refused for the test".into(),
                }
            } else {
                let id = event.id.clone();
                self.events.lock().await.push(event);
                EventOutcome { event_id: id, outcome: Outcome::Accepted as i32, reason: String::new() }
            };
            outcomes.push(outcome);
        }
        let accepted = outcomes.iter().filter(|o| o.outcome == Outcome::Accepted as i32).count() as u32;
        Ok(Response::new(DeliverResponse { accepted, outcomes }))
    }
}

async fn start_recorder() -> (Recorder, String) {
    let recorder = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = NotificationServer::new(recorder.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (recorder, url)
}

async fn wait_for(recorder: &Recorder, count: usize) -> Vec<Event> {
    for _ in 0..100 {
        let events = recorder.events.lock().await.clone();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {count} events, got {:?}", recorder.events.lock().await.len());
}

async fn relays_booking_events_and_survives_an_outage(backend: creneau_kit::testing::Backend) {
    let (recorder, url) = start_recorder().await;
    let Some(app): Option<TestApp> = spawn_app_with(backend, Some(url)).await else { return };
    let slot = app.slot("metz-1", 24, 10).await;

    let booking = app.book(app.request(&slot, "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    let events = wait_for(&recorder, 1).await;
    match &events[0].kind {
        Some(Kind::BookingConfirmed(e)) => {
            assert_eq!(e.reference, booking.reference);
            assert_eq!(e.recipient.as_ref().unwrap().email.as_deref(), Some("anne@example.fr"));
        }
        other => panic!("unexpected event {other:?}"),
    }

    // Notification goes down: bookings go on, their events wait.
    recorder.down.store(true, Ordering::SeqCst);
    for i in 0..3 {
        app.book(app.request(&slot, &format!("P{i}"), "Durand", "1941-01-01", &format!("k-out-{i}"))).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recorder.events.lock().await.len(), 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").await, 3);

    // Back up: everything is delivered, and the outbox is drained.
    recorder.down.store(false, Ordering::SeqCst);
    let events = wait_for(&recorder, 4).await;
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 4);
    for _ in 0..50 {
        if app.scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("outbox not drained");
}

async fn dead_letters(app: &TestApp) -> Vec<(String, String)> {
    let mut client = DeadLettersClient::new(creneau_kit::testing::channel(app.port).await);
    let listed = client.list_dead_letters(ListDeadLettersRequest { limit: 0 }).await.unwrap().into_inner();
    assert_eq!(listed.total as usize, listed.dead_letters.len());
    listed.dead_letters.into_iter().map(|d| (d.id, d.reason)).collect()
}

async fn a_poison_event_is_set_aside_and_the_others_flow(backend: creneau_kit::testing::Backend) {
    let (recorder, url) = start_recorder().await;
    let Some(app): Option<TestApp> = spawn_app_with(backend, Some(url)).await else { return };
    let slot = app.slot("metz-1", 24, 10).await;
    // An event notification refuses, one that cannot even be read, and
    // one of a kind this version does not know (field 13 of the oneof,
    // written by a newer version).
    recorder.down.store(true, Ordering::SeqCst);
    let poison = app.book(app.request(&slot, "Anne", "Martin", "1940-01-01", "poison")).await.unwrap();
    recorder.refused.lock().await.insert(poison.reference.clone());
    // Its citizen cancels: that event must not overtake the confirmation.
    let cancel = pb::CancelRequest { reference: poison.reference.clone(), secret: poison.secret.clone().unwrap() };
    app.client.clone().cancel(cancel).await.unwrap();
    for (kind, payload) in [("booking.garbled", "not base64!"), ("booking.reminded", "CgVmdXR1cmoA")] {
        app.db
            .execute_unprepared(&format!(
                "INSERT INTO outbox (event_id, kind, payload, occurred_at, attempts) \
                 VALUES ('{kind}', '{kind}', '{payload}', CURRENT_TIMESTAMP, 0)"
            ))
            .await
            .unwrap();
    }
    for i in 0..3 {
        app.book(app.request(&slot, &format!("P{i}"), "Durand", "1941-01-01", &format!("k-{i}"))).await.unwrap();
    }
    recorder.down.store(false, Ordering::SeqCst);

    // The others are delivered; the poison is tried three times, then set
    // aside with the garbled row, and the unknown kind waits.
    let delivered = wait_for(&recorder, 3).await;
    assert!(delivered.iter().all(|e| reference_of(e) != poison.reference));
    let mut letters = Vec::new();
    for _ in 0..100 {
        letters = dead_letters(&app).await;
        if letters.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().any(|(_, why)| why.contains("refused for the test")), "{letters:?}");
    assert!(letters.iter().any(|(_, why)| why.contains("not base64")), "{letters:?}");
    let attempts = "SELECT attempts FROM outbox WHERE kind = 'booking.confirmed' AND dead_at IS NOT NULL";
    assert_eq!(app.scalar(attempts).await, 3);
    let parked = "SELECT COUNT(*) FROM outbox WHERE kind = 'booking.reminded' \
                  AND dead_at IS NULL AND published_at IS NULL AND next_attempt_at IS NOT NULL";
    assert_eq!(app.scalar(parked).await, 1, "an unknown kind waits for a newer relay");
    let waiting = "SELECT COUNT(*) FROM outbox WHERE kind = 'booking.cancelled' AND published_at IS NULL \
                   AND dead_at IS NULL AND attempts = 0";
    assert_eq!(app.scalar(waiting).await, 1, "the cancellation waits behind its confirmation, untried");

    // Fixed on notification's side: replayed, it is delivered once.
    recorder.refused.lock().await.clear();
    let poison_id = letters.iter().find(|(_, why)| why.contains("refused")).unwrap().0.clone();
    let mut client = DeadLettersClient::new(creneau_kit::testing::channel(app.port).await);
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest { ids: vec![poison_id], all: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.replayed, 1);
    let delivered = wait_for(&recorder, 5).await;
    let of_poison: Vec<_> = delivered.iter().filter(|e| reference_of(e) == poison.reference).collect();
    assert!(
        matches!(of_poison.as_slice(), [first, second]
            if matches!(first.kind, Some(Kind::BookingConfirmed(_))) && matches!(second.kind, Some(Kind::BookingCancelled(_)))),
        "confirmed, then cancelled, once each: {of_poison:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recorder.events.lock().await.len(), 5, "delivered once");
    assert_eq!(dead_letters(&app).await.len(), 1, "the garbled row stays aside");
    let refused = client.replay_dead_letters(ReplayDeadLettersRequest { ids: vec![], all: false }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_postgres() {
    a_poison_event_is_set_aside_and_the_others_flow(creneau_kit::testing::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_sqlite() {
    a_poison_event_is_set_aside_and_the_others_flow(creneau_kit::testing::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_postgres() {
    relays_booking_events_and_survives_an_outage(creneau_kit::testing::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_sqlite() {
    relays_booking_events_and_survives_an_outage(creneau_kit::testing::Backend::Sqlite).await;
}
