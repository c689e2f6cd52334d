use serde_json::json;

use crate::helpers::{expect_problem, spawn_gateway};

#[tokio::test]
async fn the_gateway_stays_ready_without_its_backends_and_answers_503_for_what_needs_them() {
    let app = spawn_gateway().await;
    let health = app.http.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Every backend down: the gateway is still ready (it does not chain),
    // says what it sees, and refuses what needs a backend with a 503.
    let ready = app.http.get(format!("{}/readyz", app.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["backends"]["slot-inventory"], "unreachable");
    let search = app.http.get(format!("{}/api/v1/centres?postcode=57000", app.url)).send().await.unwrap();
    assert!(search.headers().contains_key("retry-after"));
    assert_eq!(search.headers()["cache-control"], "no-store", "an error is never kept by a cache");
    expect_problem(search, 503, "unavailable").await;
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

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_gateway_carries_on() {
    let metrics = creneau_kit::metrics::Metrics::new();
    let router = axum::Router::new()
        .route("/boom", axum::routing::get(|| async { boom() }))
        .route("/fine", axum::routing::get(|| async { "fine" }))
        .layer(creneau_gateway::catch_panics(metrics.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    // One client, one kept-alive connection for every request.
    let http = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    for _ in 0..3 {
        expect_problem(http.get(format!("{url}/boom")).send().await.unwrap(), 500, "internal").await;
        assert_eq!(http.get(format!("{url}/fine")).send().await.unwrap().text().await.unwrap(), "fine");
    }
    assert_eq!(metrics.panics(), 3);
}

fn boom() -> &'static str {
    panic!("a handler bug")
}
