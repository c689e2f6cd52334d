//! Booking integrity through the public API: hold, both doses at once,
//! reschedule, cancel.

use chrono::Duration;
use creneau_kit::testing::Backend;
use serde_json::{Value, json};

use crate::helpers::{booking_body, spawn_platform};

async fn hold_book_both_doses_reschedule_and_cancel(backend: Backend) {
    let Some(p) = spawn_platform(backend).await else { return };
    // Pfizer slots tomorrow, the day after, and 22 and 30 days later.
    let days = [0, 1, 22, 30].map(Duration::days);
    let ids = p.centre_with("metz-pfizer", "pfizer", &days, 1).await;
    let anne = p.attestation("1940-03-02").await;

    // Hold the first slot: nobody else can take it meanwhile.
    let held = p
        .http
        .post(p.url("/api/v1/holds"))
        .json(&json!({"slot_id": ids[0], "attestation": anne}))
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 201);
    let held: Value = held.json().await.unwrap();
    let hold_id = held["hold_id"].as_str().unwrap().to_owned();
    assert!(held["expires_at"].is_string());
    let slots: Value =
        p.http.get(p.url("/api/v1/centres/metz-pfizer/slots?days=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(slots["slots"][0]["remaining"], 0, "a held place is not offered");
    let paul = p.attestation("1941-05-05").await;
    let taken = p.book("paul-1", &booking_body(&ids[0], &paul, "Paul", "Durand", "1941-05-05")).await;
    assert_eq!(taken.status(), 409);

    // Book through the hold: both doses at once, the second 22 days later.
    let mut body = booking_body("", &anne, "Jeanne", "Dupont", "1940-03-02");
    body.as_object_mut().unwrap().remove("slot_id");
    body["hold_id"] = json!(hold_id);
    let booked = p.book("anne-1", &body).await;
    assert_eq!(booked.status(), 201);
    let booking: Value = booked.json().await.unwrap();
    let appointments = booking["appointments"].as_array().unwrap();
    assert_eq!(appointments.len(), 2);
    assert_eq!(
        (appointments[0]["dose"].as_u64(), appointments[0]["slot_id"].as_str()),
        (Some(1), Some(ids[0].as_str()))
    );
    assert_eq!(
        (appointments[1]["dose"].as_u64(), appointments[1]["slot_id"].as_str()),
        (Some(2), Some(ids[2].as_str()))
    );
    let reference = booking["reference"].as_str().unwrap().to_owned();
    let secret = booking["secret"].as_str().unwrap().to_owned();

    // Move the first dose a day later; day 22 is still inside the interval.
    let url = p.url(&format!("/api/v1/bookings/{reference}"));
    let moved = p.http.patch(&url).bearer_auth(&secret).json(&json!({"slot_id": ids[1]})).send().await.unwrap();
    assert_eq!(moved.status(), 200);
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved["appointments"][0]["slot_id"], ids[1].as_str());
    assert_eq!(moved["appointments"][1]["slot_id"], ids[2].as_str());
    // The second dose alone, to day 30.
    let moved =
        p.http.patch(&url).bearer_auth(&secret).json(&json!({"dose": 2, "slot_id": ids[3]})).send().await.unwrap();
    assert_eq!(moved.status(), 200);
    // The freed first slot is bookable again (and Paul now gets it).
    let paul_booking = p.book("paul-2", &booking_body(&ids[0], &paul, "Paul", "Durand", "1941-05-05")).await;
    assert_eq!(paul_booking.status(), 201, "day 22 freed by the move is Paul's second dose");

    // Cancel: both of Anne's doses come back.
    let cancelled = p.http.delete(&url).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(cancelled.status(), 200);
    let slots: Value =
        p.http.get(p.url("/api/v1/centres/metz-pfizer/slots?days=40")).send().await.unwrap().json().await.unwrap();
    let remaining: Vec<u64> =
        slots["slots"].as_array().unwrap().iter().map(|s| s["remaining"].as_u64().unwrap()).collect();
    assert_eq!(remaining, [0, 1, 0, 1], "Paul holds days 0 and 22; Anne's days 1 and 30 are free");

    // Messages: Anne's confirmation, two moves, a cancellation; Paul's confirmation.
    let messages = p.messages(5).await;
    assert_eq!(messages.len(), 5);
    assert_eq!(messages.iter().filter(|m| m.contains("a été déplacé")).count(), 2);
    p.platform.stop().await.unwrap();
}

async fn a_booster_is_booked_alone_after_the_delay(backend: Backend) {
    let Some(p) = spawn_platform(backend).await else { return };
    let ids = p.centre_with("metz-booster", "moderna", &[Duration::days(0)], 5).await;
    let attestation = p.attestation_for("1940-03-02", 3).await;
    let mut body = booking_body(&ids[0], &attestation, "Jeanne", "Dupont", "1940-03-02");
    body["dose"] = json!(3);
    body["last_dose_date"] = json!((chrono::Utc::now() - Duration::days(10)).date_naive().to_string());
    let too_soon = p.book("booster-1", &body).await;
    assert_eq!(too_soon.status(), 422);
    body["last_dose_date"] = json!((chrono::Utc::now() - Duration::days(120)).date_naive().to_string());
    let booked = p.book("booster-2", &body).await;
    assert_eq!(booked.status(), 201);
    let booking: Value = booked.json().await.unwrap();
    assert_eq!(booking["appointments"].as_array().unwrap().len(), 1);
    assert_eq!(booking["appointments"][0]["dose"], 3);
    p.platform.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn pair_flow_postgres() {
    hold_book_both_doses_reschedule_and_cancel(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pair_flow_sqlite() {
    hold_book_both_doses_reschedule_and_cancel(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn booster_postgres() {
    a_booster_is_booked_alone_after_the_delay(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn booster_sqlite() {
    a_booster_is_booked_alone_after_the_delay(Backend::Sqlite).await;
}

/// Staff cancel a day (a delivery failed): every citizen of that day is
/// told once, through the real notification service.
async fn a_cancelled_day_tells_each_citizen_once(backend: Backend) {
    use creneau_proto::slot_inventory::v1::{CancelSessionRequest, slot_inventory_client::SlotInventoryClient};

    let Some(p) = spawn_platform(backend).await else { return };
    let hours: Vec<Duration> = (0..5).map(Duration::hours).collect();
    let ids = p.centre_with("metz-day", "janssen", &hours, 2).await;
    let mut references = Vec::new();
    for (i, slot) in ids.iter().enumerate() {
        let birth = format!("1940-02-{:02}", i + 1);
        let attestation = p.attestation(&birth).await;
        let response =
            p.book(&format!("day-{i}"), &booking_body(slot, &attestation, &format!("P{i}"), "Martin", &birth)).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        references.push(body["reference"].as_str().unwrap().to_owned());
    }
    let mut staff = SlotInventoryClient::new(creneau_kit::testing::channel(p.platform.port("slot-inventory")).await);
    let day = (chrono::Utc::now() + Duration::days(1)).date_naive().to_string();
    let request = CancelSessionRequest {
        centre_id: "metz-day".into(),
        date: day,
        time_zone: "UTC".into(),
        reason: "livraison de vaccins annulée".into(),
        ..Default::default()
    };
    let outcome = staff.cancel_session(request.clone()).await.unwrap().into_inner();
    assert_eq!((outcome.cancelled, outcome.slots_closed), (5, 5));
    let again = staff.cancel_session(request).await.unwrap().into_inner();
    assert_eq!(again.cancelled, 0);

    let messages = p.messages(10).await;
    assert_eq!(messages.len(), 10, "5 confirmations and 5 cancellations, no more");
    for reference in &references {
        let cancellations: Vec<&String> =
            messages.iter().filter(|m| m.contains(reference.as_str()) && m.contains("annulé par le centre")).collect();
        assert_eq!(cancellations.len(), 1, "{reference}");
        assert!(cancellations[0].contains("livraison de vaccins annulée"));
    }
    p.platform.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_day_postgres() {
    a_cancelled_day_tells_each_citizen_once(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_day_sqlite() {
    a_cancelled_day_tells_each_citizen_once(Backend::Sqlite).await;
}
