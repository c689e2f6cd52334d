//! The outbox relay against a real notification gRPC server (a recording
//! one, on port 0) that can be made to refuse.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use creneau_proto::notification::v1::notification_server::{Notification, NotificationServer};
use creneau_proto::notification::v1::{DeliverRequest, DeliverResponse, Event, event::Kind};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::helpers::{TestApp, spawn_app_with};

#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
    down: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl Notification for Recorder {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable("down for the test"));
        }
        let events = request.into_inner().events;
        let accepted = events.len() as u32;
        self.events.lock().await.extend(events);
        Ok(Response::new(DeliverResponse { accepted }))
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

#[tokio::test(flavor = "multi_thread")]
async fn relay_postgres() {
    relays_booking_events_and_survives_an_outage(creneau_kit::testing::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_sqlite() {
    relays_booking_events_and_survives_an_outage(creneau_kit::testing::Backend::Sqlite).await;
}
