//! The rush, on PostgreSQL: scenarios of 1,000 concurrent clients over
//! gRPC, each followed by SQL checks of every invariant. Each prints what
//! it did: attempts, conflicts, bookings.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use creneau_kit::errors::reason as r;
use creneau_kit::testing::Backend;
use creneau_proto::slot_inventory::v1 as pb;
use creneau_slot_inventory::invariants;
use futures::future::join_all;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::helpers::{TestApp, reason, spawn_app, spawn_short_lived};

const CLIENTS: usize = 1000;

#[derive(Default)]
struct Tally {
    attempts: AtomicU64,
    /// Distinct bookings clients were told about: a request that timed out
    /// after committing is learnt from its retry's replay.
    references: Mutex<HashSet<String>>,
    shed: AtomicU64,
    confirmed: AtomicU64,
    replayed: AtomicU64,
    conflicts: AtomicU64,
    gave_up: AtomicU64,
    cancelled: AtomicU64,
    moved: AtomicU64,
    holds: AtomicU64,
    abandoned: AtomicU64,
}

impl Tally {
    fn print(&self, scenario: &str) {
        println!(
            "[rush] {scenario}: {CLIENTS} clients, {} attempts ({} shed or timed out, retried), {} conflicts, \
             {} bookings ({} replays), {} gave up, {} holds ({} abandoned), {} cancels, {} moves",
            self.attempts.load(Relaxed),
            self.shed.load(Relaxed),
            self.conflicts.load(Relaxed),
            self.confirmed.load(Relaxed),
            self.replayed.load(Relaxed),
            self.gave_up.load(Relaxed),
            self.holds.load(Relaxed),
            self.abandoned.load(Relaxed),
            self.cancelled.load(Relaxed),
            self.moved.load(Relaxed),
        );
    }
}

fn is_conflict(status: &tonic::Status) -> bool {
    [r::SLOT_FULL, r::NO_SECOND_DOSE_SLOT, r::HOLD_EXPIRED].contains(&reason(status).as_str())
}

/// Back-pressure a client waits out and retries, with the same key.
fn is_back_pressure(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::ResourceExhausted
            | tonic::Code::Cancelled
            | tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
    )
}

async fn backoff(try_: u32) {
    let jitter = rand::rng().random_range(0..50);
    tokio::time::sleep(Duration::from_millis(50 * u64::from(try_.min(10)) + jitter)).await;
}

/// One client's attempt, retried with the same key through back-pressure
/// until a definite answer; conflicts are counted, anything else fails.
async fn attempt(app: &TestApp, tally: &Tally, request: pb::BookRequest) -> Option<pb::Booking> {
    for try_ in 1.. {
        tally.attempts.fetch_add(1, Relaxed);
        match app.book(request.clone()).await {
            Ok(booking) => {
                if booking.replayed {
                    tally.replayed.fetch_add(1, Relaxed);
                }
                if tally.references.lock().unwrap().insert(booking.reference.clone()) {
                    tally.confirmed.fetch_add(1, Relaxed);
                }
                return Some(booking);
            }
            Err(status) if is_conflict(&status) => {
                tally.conflicts.fetch_add(1, Relaxed);
                return None;
            }
            Err(status) if is_back_pressure(&status) && try_ < 50 => {
                tally.shed.fetch_add(1, Relaxed);
                backoff(try_).await;
            }
            Err(status) => panic!("unexpected answer under load: {status:?}"),
        }
    }
    unreachable!()
}

fn person(i: usize) -> (String, String) {
    (format!("Client{i}"), format!("19{:02}-{:02}-{:02}", 20 + i % 40, 1 + i % 12, 1 + i % 28))
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar(sql).await
}

/// Every invariant, from the database's point of view, and the outbox
/// against what the clients were told.
async fn check_invariants(app: &TestApp, tally: &Tally) {
    assert_invariants(app).await;
    let events = |kind: &str| format!("SELECT COUNT(*) FROM outbox WHERE kind = '{kind}'");
    assert_eq!(count(app, &events("booking.confirmed")).await as u64, tally.confirmed.load(Relaxed));
    assert_eq!(count(app, &events("booking.cancelled")).await as u64, tally.cancelled.load(Relaxed));
    assert_eq!(count(app, &events("booking.moved")).await as u64, tally.moved.load(Relaxed));
    assert_eq!(count(app, "SELECT COUNT(*) FROM bookings").await as u64, tally.confirmed.load(Relaxed));
}

/// Every invariant, each printed, then all asserted.
async fn assert_invariants(app: &TestApp) {
    let checks = invariants::check(&app.db, Utc::now()).await.unwrap();
    for check in &checks {
        println!("[rush]   {:<16} {} violations: {}", check.name, check.violations, check.rule);
    }
    let broken: Vec<_> = checks.iter().filter(|c| !c.holds()).map(|c| (c.name, c.violations)).collect();
    assert!(broken.is_empty(), "invariants broken: {broken:?}");
}

/// Pfizer slots: `first` days of first-dose slots from tomorrow, and the
/// matching second-dose days three weeks later.
async fn pfizer_centre(app: &TestApp, first_days: i64, capacity: u32) -> (Vec<String>, Vec<String>) {
    let firsts: Vec<i64> = (0..first_days).collect();
    let seconds: Vec<i64> = (0..first_days).map(|d| d + 22).collect();
    let first = app.days("pfizer", "rush-centre", &firsts, capacity).await;
    let second = app.days("pfizer", "rush-centre", &seconds, capacity).await;
    (first, second)
}

async fn uniform_demand(app: TestApp) {
    // 40 first-dose places a day over 10 days, and their second doses.
    let (firsts, _) = pfizer_centre(&app, 10, 40).await;
    let tally = Tally::default();
    join_all((0..CLIENTS).map(|i| {
        let (app, tally, firsts) = (&app, &tally, &firsts);
        async move {
            let (name, birth) = person(i);
            for try_ in 0..5 {
                let slot = &firsts[rand::rng().random_range(0..firsts.len())];
                if attempt(app, tally, app.request(slot, &name, "Martin", &birth, &format!("u{i}-{try_}")))
                    .await
                    .is_some()
                {
                    return;
                }
            }
            tally.gave_up.fetch_add(1, Relaxed);
        }
    }))
    .await;
    tally.print("uniform");
    assert_eq!(tally.confirmed.load(Relaxed), 400, "400 places, 1,000 people trying five times: all sold");
    check_invariants(&app, &tally).await;
}

async fn everyone_wants_the_earliest_slot(app: TestApp) {
    // 20 single-dose slots of 20; everyone starts with the earliest and
    // moves down the list on each refusal.
    let offsets: Vec<i64> = (0..20).collect();
    let slots = app.days("janssen", "rush-centre", &offsets, 20).await;
    let tally = Tally::default();
    join_all((0..CLIENTS).map(|i| {
        let (app, tally, slots) = (&app, &tally, &slots);
        async move {
            let (name, birth) = person(i);
            for (n, slot) in slots.iter().enumerate() {
                if attempt(app, tally, app.request(slot, &name, "Hot", &birth, &format!("h{i}-{n}"))).await.is_some() {
                    return;
                }
            }
            tally.gave_up.fetch_add(1, Relaxed);
        }
    }))
    .await;
    tally.print("hot-spot");
    assert_eq!(tally.confirmed.load(Relaxed), 400, "nothing left unsold while people were trying");
    assert_eq!(tally.gave_up.load(Relaxed), 600);
    check_invariants(&app, &tally).await;
}

async fn holds_expire_mid_run(app: TestApp) {
    // This app's holds live two seconds. A watcher checks capacity all along.
    let offsets: Vec<i64> = (0..10).collect();
    let slots = app.days("janssen", "rush-centre", &offsets, 30).await;
    let tally = Tally::default();
    let running = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (db, running) = (app.db.clone(), running.clone());
        tokio::spawn(async move {
            let mut checks = 0;
            while running.load(Relaxed) {
                let over = invariants::over_capacity(&db, Utc::now()).await.unwrap();
                assert_eq!(over, 0, "over capacity during the run");
                checks += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            checks
        })
    };
    join_all((0..CLIENTS).map(|i| {
        let (app, tally, slots) = (&app, &tally, &slots);
        async move {
            let (name, birth) = person(i);
            let attestation = app.attestation(&birth);
            let (slot, abandon, pause) = {
                let mut rng = rand::rng();
                (slots[rng.random_range(0..slots.len())].clone(), rng.random_bool(0.3), rng.random_range(0..400))
            };
            let mut try_ = 0;
            let held = loop {
                try_ += 1;
                let held = app
                    .client
                    .clone()
                    .hold(pb::HoldRequest { slot_id: slot.clone(), attestation: attestation.clone() })
                    .await;
                match held {
                    Ok(h) => break h.into_inner(),
                    Err(status) if reason(&status) == r::SLOT_FULL => {
                        tally.conflicts.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(status) if is_back_pressure(&status) && try_ < 50 => {
                        tally.shed.fetch_add(1, Relaxed);
                        backoff(try_).await;
                    }
                    Err(status) => panic!("unexpected hold answer: {status:?}"),
                }
            };
            tally.holds.fetch_add(1, Relaxed);
            if abandon {
                tally.abandoned.fetch_add(1, Relaxed);
                // Come back after the hold expired and book directly.
                tokio::time::sleep(Duration::from_millis(2200)).await;
                attempt(app, tally, app.request(&slot, &name, "Late", &birth, &format!("late{i}"))).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let mut request = app.request("", &name, "Held", &birth, &format!("held{i}"));
            request.hold_id = Some(held.hold_id);
            request.attestation = attestation;
            attempt(app, tally, request).await;
        }
    }))
    .await;
    running.store(false, Relaxed);
    let checks = watcher.await.unwrap();
    tally.print(&format!("holds expiring ({checks} capacity checks during the run)"));
    assert!(tally.abandoned.load(Relaxed) > 0 && tally.confirmed.load(Relaxed) > 0);
    check_invariants(&app, &tally).await;
}

async fn cancellations_and_reschedules_interleaved(app: TestApp) {
    let (firsts, _) = pfizer_centre(&app, 10, 60).await;
    let tally = Tally::default();
    join_all((0..CLIENTS).map(|i| {
        let (app, tally, firsts) = (&app, &tally, &firsts);
        async move {
            let (name, birth) = person(i);
            let mut order = firsts.clone();
            order.shuffle(&mut rand::rng());
            let mut booked = None;
            for (n, slot) in order.iter().take(3).enumerate() {
                booked = attempt(app, tally, app.request(slot, &name, "Busy", &birth, &format!("c{i}-{n}"))).await;
                if booked.is_some() {
                    break;
                }
            }
            let Some(booking) = booked else {
                tally.gave_up.fetch_add(1, Relaxed);
                return;
            };
            let secret = booking.secret.clone().unwrap();
            let roll: u32 = rand::rng().random_range(0..10);
            let mut client = app.client.clone();
            if roll < 2 {
                let cancel = pb::CancelRequest { reference: booking.reference.clone(), secret };
                for try_ in 1.. {
                    match client.cancel(cancel.clone()).await {
                        Ok(_) => break,
                        Err(status) if is_back_pressure(&status) && try_ < 50 => backoff(try_).await,
                        Err(status) => panic!("unexpected cancel answer: {status:?}"),
                    }
                }
                tally.cancelled.fetch_add(1, Relaxed);
            } else if roll < 4 {
                let target = &order[3 + rand::rng().random_range(0..order.len() - 3)];
                let request = pb::RescheduleRequest {
                    reference: booking.reference.clone(),
                    secret,
                    dose: 1,
                    slot_id: target.clone(),
                    second_slot_id: None,
                };
                for try_ in 1.. {
                    match client.reschedule(request.clone()).await {
                        Ok(_) => {
                            tally.moved.fetch_add(1, Relaxed);
                            break;
                        }
                        Err(status) if is_conflict(&status) => {
                            tally.conflicts.fetch_add(1, Relaxed);
                            break;
                        }
                        Err(status) if is_back_pressure(&status) && try_ < 50 => backoff(try_).await,
                        Err(status) => panic!("unexpected reschedule answer: {status:?}"),
                    }
                }
            }
        }
    }))
    .await;
    tally.print("cancellations and reschedules");
    check_invariants(&app, &tally).await;
}

async fn retries_with_the_same_key(app: TestApp) {
    let offsets: Vec<i64> = (0..10).collect();
    let slots = app.days("janssen", "rush-centre", &offsets, 50).await;
    let tally = Tally::default();
    let references = join_all((0..CLIENTS).map(|i| {
        let (app, tally, slots) = (&app, &tally, &slots);
        async move {
            let (name, birth) = person(i);
            let request = app.request(&slots[i % slots.len()], &name, "Retry", &birth, &format!("same-key-{i}"));
            // A flaky network: the same request three times at once.
            let answers = join_all((0..3).map(|_| attempt(app, tally, request.clone()))).await;
            let refs: Vec<String> = answers.into_iter().flatten().map(|b| b.reference).collect();
            refs
        }
    }))
    .await;
    tally.print("retries with the same key");
    for refs in &references {
        assert!(refs.windows(2).all(|w| w[0] == w[1]), "one key, one booking: {refs:?}");
    }
    assert_eq!(tally.confirmed.load(Relaxed), 500, "500 places");
    check_invariants(&app, &tally).await;
}

/// Every operation that changes a booking, at the same instant on the same
/// bookings: the citizen cancels and moves each dose, a retry replays the
/// booking, and staff cancel one day and move another. Then every place
/// left is sold: a place freed twice would sell beyond capacity.
async fn the_same_bookings_changed_at_once(app: TestApp) {
    // Second-dose days with room to spare: a first-dose place left unsold
    // is then one no second dose could follow.
    let firsts = app.days("pfizer", "rush-centre", &(0..10).collect::<Vec<_>>(), 30).await;
    let seconds = app.days("pfizer", "rush-centre", &(22..32).collect::<Vec<_>>(), 90).await;
    let tally = Tally::default();
    let booked: Vec<(pb::BookRequest, pb::Booking)> = join_all((0..240).map(|i| {
        let (app, tally, firsts) = (&app, &tally, &firsts);
        async move {
            let (name, birth) = person(i);
            let request = app.request(&firsts[i % firsts.len()], &name, "Same", &birth, &format!("s{i}"));
            attempt(app, tally, request.clone()).await.map(|booking| (request, booking))
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(booked.len(), 240, "room for everyone before the race");

    let (cancelled_by_staff, moved_by_staff) = (AtomicU64::new(0), AtomicU64::new(0));
    let day = |offset: i64| (Utc::now() + chrono::Duration::days(1 + offset)).date_naive().to_string();
    let sessions = (0..2).flat_map(|_| {
        [(day(0), None), (day(1), Some(day(9)))].map(|(date, move_to_date)| pb::CancelSessionRequest {
            centre_id: "rush-centre".into(),
            date,
            time_zone: "UTC".into(),
            reason: "livraison annulée".into(),
            move_to_date,
            ..Default::default()
        })
    });
    let staff = join_all(sessions.map(|request| {
        let (app, cancelled, moved) = (&app, &cancelled_by_staff, &moved_by_staff);
        async move {
            let outcome = retry_through_back_pressure(|| {
                let mut client = app.client.clone();
                let request = request.clone();
                async move { client.cancel_session(request).await.map(|r| r.into_inner()) }
            })
            .await
            .expect("a session is cancelled or moved");
            cancelled.fetch_add(u64::from(outcome.cancelled), Relaxed);
            moved.fetch_add(u64::from(outcome.moved), Relaxed);
        }
    }));
    let citizens = join_all(booked.iter().flat_map(|(request, booking)| {
        let credentials = (booking.reference.clone(), booking.secret.clone().unwrap());
        let pick = |slots: &[String]| slots[rand::rng().random_range(0..slots.len())].clone();
        let operations: [Operation; 4] = [
            Operation::Cancel,
            Operation::Move { dose: 1, slot_id: pick(&firsts) },
            Operation::Move { dose: 2, slot_id: pick(&seconds) },
            Operation::Replay(Box::new(request.clone())),
        ];
        operations.map(|operation| {
            let (app, tally, credentials) = (&app, &tally, credentials.clone());
            async move { operation.run(app, tally, credentials).await }
        })
    }));
    futures::join!(staff, citizens);

    // Everything left is sold, by people who move down the list of days.
    join_all((0..CLIENTS).map(|i| {
        let (app, tally, firsts) = (&app, &tally, &firsts);
        async move {
            let (name, birth) = person(10_000 + i);
            for (n, slot) in firsts.iter().enumerate() {
                let request = app.request(slot, &name, "Late", &birth, &format!("fill{i}-{n}"));
                if attempt(app, tally, request).await.is_some() {
                    return;
                }
            }
            tally.gave_up.fetch_add(1, Relaxed);
        }
    }))
    .await;
    tally.print(&format!(
        "the same bookings changed at once (staff: {} cancelled, {} moved)",
        cancelled_by_staff.load(Relaxed),
        moved_by_staff.load(Relaxed)
    ));
    assert_invariants(&app).await;
    let open_with_room = app
        .scalar(
            "SELECT COUNT(*) FROM slots s WHERE s.status = 'open' AND s.booked < s.capacity \
             AND s.starts_at < (SELECT MIN(starts_at) FROM slots) + INTERVAL '10 days'",
        )
        .await;
    assert_eq!(open_with_room, 0, "every first-dose place left was sold");
}

/// One change a citizen makes to their booking.
enum Operation {
    Cancel,
    Move { dose: u32, slot_id: String },
    Replay(Box<pb::BookRequest>),
}

impl Operation {
    async fn run(self, app: &TestApp, tally: &Tally, (reference, secret): (String, String)) {
        let answer = match self {
            Operation::Cancel => {
                let request = pb::CancelRequest { reference, secret };
                retry_through_back_pressure(|| {
                    let (mut client, request) = (app.client.clone(), request.clone());
                    async move { client.cancel(request).await.map(|r| r.into_inner()) }
                })
                .await
            }
            Operation::Move { dose, slot_id } => {
                let request = pb::RescheduleRequest { reference, secret, dose, slot_id, second_slot_id: None };
                retry_through_back_pressure(|| {
                    let (mut client, request) = (app.client.clone(), request.clone());
                    async move { client.reschedule(request).await.map(|r| r.into_inner()) }
                })
                .await
            }
            Operation::Replay(request) => {
                let booking = attempt(app, tally, *request).await.expect("a replay answers");
                assert!(booking.replayed && booking.reference == reference, "a retry replays: {booking:?}");
                return;
            }
        };
        tally.attempts.fetch_add(1, Relaxed);
        match answer {
            Ok(booking) if booking.status == "cancelled" => {
                tally.cancelled.fetch_add(1, Relaxed);
            }
            Ok(_) => {
                tally.moved.fetch_add(1, Relaxed);
            }
            // Refusals that leave the booking as it was: the slot is full
            // or closed, the booking was cancelled first, the second dose
            // would fall outside its interval.
            Err(status) if is_conflict(&status) || reason(&status) == r::VALIDATION => {
                tally.conflicts.fetch_add(1, Relaxed);
            }
            Err(status) => panic!("unexpected answer to a change: {status:?}"),
        }
    }
}

/// Calls again, after a pause, while the service pushes back.
async fn retry_through_back_pressure<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    for try_ in 1.. {
        match call().await {
            Err(status) if is_back_pressure(&status) && try_ < 50 => backoff(try_).await,
            other => return other,
        }
    }
    unreachable!()
}

/// One scenario at a time: each is a rush of its own, not a share of one.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! on_postgres {
    ($spawn:path; $($scenario:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $scenario() {
                let _turn = super::ONE_AT_A_TIME.lock().await;
                if let Some(app) = $spawn(Backend::Postgres).await {
                    super::$scenario(app).await;
                }
            }
        )+
    };
}

mod postgres {
    use super::*;

    on_postgres!(spawn_app;
        uniform_demand,
        everyone_wants_the_earliest_slot,
        cancellations_and_reschedules_interleaved,
        the_same_bookings_changed_at_once,
        retries_with_the_same_key,
    );
    on_postgres!(spawn_short_lived; holds_expire_mid_run);
}
