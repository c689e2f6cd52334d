use serde_json::json;

use crate::helpers::{expect_problem, spawn_gateway};

#[tokio::test]
async fn probes_tell_alive_from_ready() {
    let app = spawn_gateway().await;
    let health = app.http.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(format!("{}/readyz", app.url)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["backends"]["slot-inventory"], "unreachable");
}

#[tokio::test]
async fn bookings_need_an_idempotency_key_and_well_formed_json() {
    let app = spawn_gateway().await;
    let url = format!("{}/api/v1/bookings", app.url);
    let body = json!({"slot_id": "s", "attestation": "a",
        "citizen": {"first_name": "A", "last_name": "B", "birth_date": "1940-01-01", "email": "a@b.fr"}});

    let missing_key = app.http.post(&url).json(&body).send().await.unwrap();
    expect_problem(missing_key, 400, "validation").await;

    let syntax = app
        .http
        .post(&url)
        .header("idempotency-key", "k")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_problem(syntax, 400, "validation").await;

    let wrong_types = app
        .http
        .post(&url)
        .header("idempotency-key", "k")
        .json(&json!({"slot_id": 12, "citizen": "nobody"}))
        .send()
        .await
        .unwrap();
    expect_problem(wrong_types, 422, "validation").await;

    let no_content_type =
        app.http.post(&url).header("idempotency-key", "k").body(body.to_string()).send().await.unwrap();
    expect_problem(no_content_type, 415, "unsupported-media-type").await;

    let huge = json!({"slot_id": "x".repeat(70 * 1024), "attestation": "a", "citizen": body["citizen"]});
    let too_large = app.http.post(&url).header("idempotency-key", "k").json(&huge).send().await.unwrap();
    expect_problem(too_large, 413, "payload-too-large").await;
}

#[tokio::test]
async fn search_parameters_are_validated_before_any_backend_call() {
    let app = spawn_gateway().await;
    for query in ["", "?lat=49.1", "?postcode=57000&lat=49.1&lon=6.1", "?postcode=57000&radius_km=far"] {
        let response = app.http.get(format!("{}/api/v1/centres{query}", app.url)).send().await.unwrap();
        expect_problem(response, 422, "validation").await;
    }
}

#[tokio::test]
async fn unknown_routes_and_missing_credentials_are_problems_too() {
    let app = spawn_gateway().await;
    let response = app.http.get(format!("{}/api/v1/nothing-here", app.url)).send().await.unwrap();
    expect_problem(response, 404, "not-found").await;
    let response = app.http.get(format!("{}/api/v1/bookings/ABCD-EFGH", app.url)).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    expect_problem(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_unreachable_backend_is_a_503_with_retry_after() {
    let app = spawn_gateway().await;
    let response = app
        .http
        .post(format!("{}/api/v1/eligibility", app.url))
        .json(&json!({"birth_date": "1940-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "2");
    expect_problem(response, 503, "unavailable").await;
}
