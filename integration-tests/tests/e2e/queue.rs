//! The waiting room, end to end: joining costs a proof of work, tickets and
//! passes cannot be forged, expired or reused, citizens go in in the order
//! they joined (across replicas, one of them killed), one pass books once,
//! and those waiting for a département that sells out are told so.

use std::time::{Duration, Instant};

use chrono::Utc;
use creneau::Databases;
use creneau_gateway::QueueSettings;
use creneau_gateway::queue::keys::Keyring;
use creneau_gateway::queue::pow;
use creneau_gateway::queue::tokens::{Sealed, Ticket, TicketId};
use creneau_kit::testing::Backend;
use reqwest::Client;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestPlatform, booking_body, spawn_platform_with};

/// Two admissions a second, exactly: the loop cannot wander in a test.
fn room(keys: &str) -> QueueSettings {
    QueueSettings {
        enabled: true,
        keys: keys.into(),
        rate_floor: 2.0,
        rate_ceiling: 2.0,
        margin: 0.0,
        difficulty_floor: 6,
        difficulty_ceiling: 10,
        joins_per_ip_per_minute: 0,
        ..Default::default()
    }
}

async fn challenge(http: &Client, base: &str) -> (String, u8) {
    let body: Value = http.get(format!("{base}/api/v1/queue/challenge")).send().await.unwrap().json().await.unwrap();
    (body["challenge"].as_str().unwrap().to_owned(), body["difficulty"].as_u64().unwrap() as u8)
}

/// Joins for `postcode` through the gateway at `base`; returns the ticket.
async fn join(http: &Client, base: &str, postcode: &str) -> String {
    let (challenge, difficulty) = challenge(http, base).await;
    let solution = pow::solve(&challenge, difficulty);
    let response = http
        .post(format!("{base}/api/v1/queue"))
        .json(&json!({ "postcode": postcode, "challenge": challenge, "solution": solution }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let retry_after = response.headers().get("retry-after").is_some();
    let body: Value = response.json().await.unwrap();
    assert!(retry_after, "{body}");
    assert_eq!(body["status"], "waiting", "{body}");
    assert!(body["position"].as_u64().unwrap() >= 1);
    body["ticket"].as_str().unwrap().to_owned()
}

/// Waits until the room counts `places` in `department`.
async fn room_sees(http: &Client, base: &str, department: &str, places: u64) {
    let started = Instant::now();
    loop {
        let body: Value = http.get(format!("{base}/api/v1/queue")).send().await.unwrap().json().await.unwrap();
        let line = body["departments"].as_array().unwrap().iter().find(|d| d["department"] == department).cloned();
        if line.is_some_and(|l| l["places_left"] == places) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the room never saw the places: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status(http: &Client, base: &str, ticket: &str) -> reqwest::Response {
    http.get(format!("{base}/api/v1/queue/status")).bearer_auth(ticket).send().await.unwrap()
}

/// Polls `tickets` until every one is admitted or sold out, each round on
/// one of `bases` in turn and from the last ticket to the first: a replica's
/// board only moves forward, so a ticket seen admitted before one that
/// joined earlier is a ticket admitted out of order. Returns, for each, the
/// round it was admitted in (`None`: sold out) and its pass.
async fn poll(http: &Client, bases: &[String], tickets: &[String], within: Duration) -> Vec<Option<(u32, String)>> {
    let mut outcome: Vec<Option<Option<(u32, String)>>> = vec![None; tickets.len()];
    let started = Instant::now();
    let mut current = tickets.to_vec();
    for round in 0.. {
        let base = &bases[round as usize % bases.len()];
        for i in (0..tickets.len()).rev() {
            if outcome[i].is_some() {
                continue;
            }
            let response = status(http, base, &current[i]).await;
            assert_eq!(response.status(), 200, "ticket {i}");
            let body: Value = response.json().await.unwrap();
            match body["status"].as_str().unwrap() {
                "waiting" => current[i] = body["ticket"].as_str().unwrap().to_owned(),
                "admitted" => outcome[i] = Some(Some((round, body["pass"].as_str().unwrap().to_owned()))),
                "sold-out" => outcome[i] = Some(None),
                other => panic!("unexpected status {other}: {body}"),
            }
        }
        if outcome.iter().all(Option::is_some) {
            break;
        }
        assert!(started.elapsed() < within, "still waiting after {within:?}: {outcome:?}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    outcome.into_iter().map(Option::unwrap).collect()
}

async fn problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert!(body["type"].as_str().unwrap().ends_with(kind), "{body}");
    body
}

impl TestPlatform {
    async fn with_pass(&self, pass: &str, request: reqwest::RequestBuilder) -> reqwest::Response {
        request.header("x-creneau-pass", pass).send().await.unwrap()
    }

    /// Holds and books `slot` with `pass`, as the citizen born on `birth`;
    /// gives the hold and its attestation too.
    async fn book_with_pass(
        &self,
        pass: &str,
        slot: &str,
        birth: &str,
        last: &str,
    ) -> (reqwest::Response, String, String) {
        let eligibility = self
            .with_pass(
                pass,
                self.http
                    .post(self.url("/api/v1/eligibility"))
                    .json(&json!({ "birth_date": birth, "conditions": [], "dose": 1 })),
            )
            .await;
        assert_eq!(eligibility.status(), 200);
        let attestation = eligibility.json::<Value>().await.unwrap()["attestation"].as_str().unwrap().to_owned();
        let hold = self
            .with_pass(
                pass,
                self.http.post(self.url("/api/v1/holds")).json(&json!({ "slot_id": slot, "attestation": attestation })),
            )
            .await;
        assert_eq!(hold.status(), 201);
        let hold_id = hold.json::<Value>().await.unwrap()["hold_id"].as_str().unwrap().to_owned();
        let mut body = booking_body(slot, &attestation, "Jeanne", last, birth);
        body["hold_id"] = json!(hold_id);
        body.as_object_mut().unwrap().remove("slot_id");
        let key = uuid::Uuid::new_v4().to_string();
        let booked = self
            .with_pass(pass, self.http.post(self.url("/api/v1/bookings")).header("idempotency-key", key).json(&body))
            .await;
        (booked, hold_id, attestation)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_room_admits_in_joining_order_books_once_per_pass_and_tells_of_a_sell_out() {
    let keys = Keyring::generate_spec("k1");
    let settings = room(&keys);
    let Some(p) = spawn_platform_with(Backend::Postgres, |c| c.queue = settings).await else { return };
    let slots = p.centre_with_slots("queue-metz", 3, 1).await;
    let base = p.platform.gateway_url();
    let http = &p.http;
    room_sees(http, &base, "57", 3).await;

    // Without a pass, the funnel points at the queue.
    let refused =
        problem(http.get(p.url("/api/v1/centres?department=57")).send().await.unwrap(), 429, "queue-required").await;
    assert_eq!(refused["queue"], "/api/v1/queue");
    let forged = http.get(p.url("/api/v1/centres?department=57")).header("x-creneau-pass", "pass.k1.e30.AAAA");
    problem(forged.send().await.unwrap(), 429, "queue-required").await;
    // Managing a booking and the open data need none.
    assert_eq!(http.get(p.url("/api/v1/open-data/$bulk-publish")).send().await.unwrap().status(), 200);

    // Joining: a postcode of a département, a proof of work good once.
    let (c, difficulty) = challenge(http, &base).await;
    let solution = pow::solve(&c, difficulty);
    let joining = |postcode: &str, challenge: &str, solution: u64| {
        http.post(p.url("/api/v1/queue"))
            .json(&json!({ "postcode": postcode, "challenge": challenge, "solution": solution }))
    };
    problem(joining("99999", &c, solution).send().await.unwrap(), 422, "validation").await;
    let wrong = (0..).find(|n| !pow::meets(&c, *n, difficulty)).unwrap();
    problem(joining("57000", &c, wrong).send().await.unwrap(), 400, "proof-of-work").await;
    problem(joining("57000", "challenge.k1.e30.AAAA", 0).send().await.unwrap(), 400, "proof-of-work").await;
    let first = joining("57000", &c, solution).send().await.unwrap();
    assert_eq!(first.status(), 202);
    let mut tickets = vec![first.json::<Value>().await.unwrap()["ticket"].as_str().unwrap().to_owned()];
    problem(joining("57000", &c, solution).send().await.unwrap(), 400, "proof-of-work").await;

    for _ in 0..5 {
        tickets.push(join(http, &base, "57070").await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    // Tickets: forged, sealed by an unknown key, expired.
    let mut forged = tickets[0].clone();
    forged.replace_range(forged.len() - 3.., "AAA");
    problem(status(http, &base, &forged).await, 401, "unauthorized").await;
    let stranger = Keyring::parse(&Keyring::generate_spec("k1")).unwrap();
    let now = Utc::now().timestamp_millis();
    let ticket = |expires_ms: i64| Ticket {
        id: TicketId::random(),
        department: "57".into(),
        order: 1,
        opening_ms: None,
        joined_ms: now - 10_000,
        expires_ms,
        shown: None,
    };
    problem(status(http, &base, &ticket(now + 60_000).seal(&stranger)).await, 401, "unauthorized").await;
    let ours = Keyring::parse(&keys).unwrap();
    problem(status(http, &base, &ticket(now - 1).seal(&ours)).await, 410, "ticket-expired").await;

    // Three places, no margin: the first three go in, in order, the others wait.
    let outcome = poll(http, std::slice::from_ref(&base), &tickets[..3], Duration::from_secs(20)).await;
    let rounds: Vec<u32> = outcome.iter().map(|o| o.as_ref().expect("admitted").0).collect();
    assert!(rounds.windows(2).all(|w| w[0] <= w[1]), "admitted out of order: {rounds:?}");
    let passes: Vec<String> = outcome.into_iter().map(|o| o.unwrap().1).collect();
    for waiting in &tickets[3..] {
        let body: Value = status(http, &base, waiting).await.json().await.unwrap();
        assert_eq!(body["status"], "waiting", "{body}");
        assert_eq!(body["places_left"], 3);
    }

    // One pass, one booking: a second one with it is refused.
    assert_eq!(p.book_with_pass(&passes[0], &slots[0], "1940-01-01", "Un").await.0.status(), 201);
    let (again, hold, attestation) = p.book_with_pass(&passes[0], &slots[1], "1941-01-01", "Deux").await;
    let body = problem(again, 409, "idempotency-conflict").await;
    assert!(body["detail"].as_str().unwrap().contains("pass"), "{body}");
    // The refused booking's hold goes (no pass needed), then the two other
    // passes take the last places.
    let released = http.delete(p.url(&format!("/api/v1/holds/{hold}"))).bearer_auth(attestation).send().await.unwrap();
    assert!(released.status().is_success(), "{}", released.status());
    assert_eq!(p.book_with_pass(&passes[1], &slots[1], "1942-01-01", "Trois").await.0.status(), 201);
    assert_eq!(p.book_with_pass(&passes[2], &slots[2], "1943-01-01", "Quatre").await.0.status(), 201);

    // Sold out: those still waiting are told at their next status.
    let told = poll(http, std::slice::from_ref(&base), &tickets[3..], Duration::from_secs(10)).await;
    assert!(told.iter().all(Option::is_none), "waiters of a sold-out département must be told");
}

/// Starts a gateway replica on the platform's backends and the shared
/// database, in a task that can be aborted like a killed process.
async fn replica(p: &TestPlatform, settings: QueueSettings) -> (String, String, tokio::task::JoinHandle<()>) {
    let gateway = creneau_gateway::Settings {
        server: creneau_kit::ServerSettings::local(0),
        telemetry: Default::default(),
        gateway: creneau_gateway::GatewaySettings {
            eligibility_url: p.platform.grpc_url("eligibility"),
            centre_directory_url: p.platform.grpc_url("centre-directory"),
            slot_inventory_url: p.platform.slot_inventory_url(),
            backend_timeout_ms: 5000,
            max_body_bytes: 64 * 1024,
        },
        queue: settings,
        database: Some(Databases::Shared(p.database_url()).settings_for("gateway")),
    };
    let app = creneau_gateway::Application::build(gateway).await.unwrap();
    let name = app.room().unwrap().replica().to_owned();
    let url = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(async move {
        let _ = app.run_until(std::future::pending()).await;
    });
    (url, name, task)
}

async fn leader(p: &TestPlatform) -> String {
    let row =
        p.db.query_one_raw(sea_orm::Statement::from_string(
            p.db.get_database_backend(),
            "SELECT leader FROM queue_room WHERE id = 1",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<String>("", "leader").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_come_first_served_holds_across_replicas_when_the_leader_is_killed() {
    let settings = room(&Keyring::generate_spec("k1"));
    // The platform's own gateway stays out of the room: three replicas of
    // this test's share it.
    let Some(p) = spawn_platform_with(Backend::Postgres, |_| {}).await else { return };
    p.centre_with_slots("queue-fifo", 40, 1).await;
    let (first, first_name, first_task) = replica(&p, settings.clone()).await;
    let started = Instant::now();
    while leader(&p).await != first_name {
        assert!(started.elapsed() < Duration::from_secs(5), "the first replica never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (second, _, _second_task) = replica(&p, settings.clone()).await;
    let (third, _, _third_task) = replica(&p, settings).await;
    room_sees(&p.http, &first, "57", 40).await;
    let bases = [first.clone(), second.clone(), third.clone()];
    let mut tickets = Vec::new();
    for i in 0..12 {
        tickets.push(join(&p.http, &bases[i % 3], "57000").await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // The leader dies mid-queue, with joins it may not have written yet.
    first_task.abort();
    let survivors = [second, third];
    let outcome = poll(&p.http, &survivors, &tickets, Duration::from_secs(40)).await;
    let rounds: Vec<u32> = outcome.iter().map(|o| o.as_ref().expect("nobody loses their place").0).collect();
    assert!(rounds.windows(2).all(|w| w[0] <= w[1]), "admitted out of joining order: {rounds:?}");
    assert_ne!(leader(&p).await, first_name, "another replica took over");
}
