//! Input that used to reach date arithmetic or PostgreSQL unchecked (dates
//! far in the future, identifiers with NUL bytes or of a megabyte) answers
//! a 4xx problem, through the public API, with every service on
//! PostgreSQL. Each case checks the platform still answers afterwards.

use creneau_kit::testing::Backend;
use serde_json::{Value, json};

use crate::helpers::{TestPlatform, booking_body, spawn_platform};

/// The status and problem type of a response, with its content type
/// checked.
async fn problem(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{status}: {body}");
    (status, body["type"].as_str().unwrap_or_default().to_owned())
}

fn assert_validation((status, kind): (u16, String), what: &str) {
    assert!((400..500).contains(&status), "{what}: {status} {kind}");
    assert!(kind.ends_with("/validation") || kind.ends_with("/not-found"), "{what}: {status} {kind}");
}

async fn get(p: &TestPlatform, path: &str) -> (u16, String) {
    problem(p.http.get(p.url(path)).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn far_future_dates_are_refused_not_overflowed() {
    let Some(p) = spawn_platform(Backend::Postgres).await else { return };
    let slots = p.centre_with_slots("metz-dates", 1, 5).await;
    for path in [
        "/api/v1/centres/metz-dates/slots?from=9999-12-31&days=62",
        "/api/v1/centres/metz-dates/slots?from=%2B262142-12-31&days=62",
        "/api/v1/centres/metz-dates/slots?from=2199-12-31&days=62",
        "/api/v1/centres?postcode=57000&from=9999-12-01&to=9999-12-31",
        "/api/v1/centres?postcode=57000&from=2026-12-01&to=%2B262142-01-01",
    ] {
        let response = p.http.get(p.url(path)).send().await.unwrap();
        if path.contains("2199-12-31") {
            // The last day of the calendar still answers.
            assert_eq!(response.status(), 200, "{path}");
            continue;
        }
        assert_validation(problem(response).await, path);
    }
    for birth_date in ["9999-12-31", "+262142-12-31", "1066-10-14"] {
        let body = json!({"birth_date": birth_date, "conditions": []});
        let response = p.http.post(p.url("/api/v1/eligibility")).json(&body).send().await.unwrap();
        assert_validation(problem(response).await, birth_date);
    }
    // A booster whose last dose is far in the past or the future.
    let attestation = p.attestation_for("1940-03-02", 3).await;
    for last_dose in ["-262143-01-01", "+262142-12-31", "0001-01-01"] {
        let mut body = booking_body(&slots[0], &attestation, "Jeanne", "Dupont", "1940-03-02");
        body["dose"] = json!(3);
        body["last_dose_date"] = json!(last_dose);
        assert_validation(problem(p.book(&format!("booster-{last_dose}"), &body).await).await, last_dose);
    }
    assert_eq!(p.http.get(p.url("/api/v1/centres/metz-dates/slots")).send().await.unwrap().status(), 200);
    p.platform.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn identifiers_with_nul_bytes_or_too_long_are_refused() {
    let Some(p) = spawn_platform(Backend::Postgres).await else { return };
    let slots = p.centre_with_slots("metz-ids", 1, 5).await;
    // A URL carries a few kilobytes at most; a body, up to its limit.
    let (long_in_path, long) = ("x".repeat(4_000), "x".repeat(60_000));
    for bad in ["a%00b", "%00", long_in_path.as_str()] {
        assert_validation(get(&p, &format!("/api/v1/centres/{bad}")).await, "centre id");
        assert_validation(get(&p, &format!("/api/v1/centres/{bad}/slots")).await, "centre id in slots");
        let seen = p.http.get(p.url(&format!("/api/v1/bookings/{bad}"))).bearer_auth("secret").send().await.unwrap();
        assert_validation(problem(seen).await, "reference");
        let release = p.http.delete(p.url(&format!("/api/v1/holds/{bad}"))).bearer_auth("x").send().await.unwrap();
        assert_validation(problem(release).await, "hold id");
    }
    let attestation = p.attestation("1940-03-02").await;
    for bad in ["a\u{0}b", "\u{0}", long.as_str()] {
        let hold = p.http.post(p.url("/api/v1/holds")).json(&json!({"slot_id": bad, "attestation": attestation}));
        assert_validation(problem(hold.send().await.unwrap()).await, "slot id in a hold");
        let body = booking_body(bad, &attestation, "Jeanne", "Dupont", "1940-03-02");
        assert_validation(problem(p.book("bad-slot", &body).await).await, "slot id in a booking");
        let mut body = booking_body(&slots[0], &attestation, "Jeanne", "Dupont", "1940-03-02");
        body["second_slot_id"] = json!(bad);
        assert_validation(problem(p.book("bad-second", &body).await).await, "second slot id");
        let mut body = booking_body(&slots[0], &attestation, "Jeanne", "Dupont", "1940-03-02");
        body["citizen"]["last_name"] = json!(bad);
        assert_validation(problem(p.book("bad-name", &body).await).await, "a name");
    }
    // A real booking, then moves to slots that cannot be.
    let booked: Value = p
        .book("good", &booking_body(&slots[0], &attestation, "Jeanne", "Dupont", "1940-03-02"))
        .await
        .json()
        .await
        .unwrap();
    let (reference, secret) = (booked["reference"].as_str().unwrap(), booked["secret"].as_str().unwrap());
    for bad in ["a\u{0}b", long.as_str()] {
        let moved = p
            .http
            .patch(p.url(&format!("/api/v1/bookings/{reference}")))
            .bearer_auth(secret)
            .json(&json!({"slot_id": bad}))
            .send()
            .await
            .unwrap();
        assert_validation(problem(moved).await, "slot id in a move");
    }
    let seen = p.http.get(p.url(&format!("/api/v1/bookings/{reference}"))).bearer_auth(secret).send().await.unwrap();
    assert_eq!(seen.status(), 200, "the booking is untouched");
    p.platform.stop().await.unwrap();
}
