//! The citizen's whole path, through the public API only.

use creneau_kit::testing::Backend;
use serde_json::Value;

use crate::helpers::{TestPlatform, booking_body, spawn_platform};

async fn problem_type(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    body["type"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

async fn remaining(p: &TestPlatform, centre: &str, slot: &str) -> u64 {
    let slots: Value = p
        .http
        .get(p.url(&format!("/api/v1/centres/{centre}/slots?days=7")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    slots["slots"].as_array().unwrap().iter().find(|s| s["id"] == slot).unwrap()["remaining"].as_u64().unwrap()
}

async fn a_citizen_checks_finds_books_and_cancels(backend: Backend) {
    let Some(p) = spawn_platform(backend).await else { return };
    let slots = p.centre_with_slots("metz-arsenal", 3, 2).await;

    // Eligibility.
    let attestation = p.attestation("1940-03-02").await;

    // Search by postcode, then the centre and its slots.
    let found: Value = p
        .http
        .get(p.url("/api/v1/centres?postcode=57000&radius_km=30&vaccine=janssen&limit=20"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let centre = &found["centres"][0];
    assert_eq!(centre["id"], "metz-arsenal", "{found}");
    assert_eq!(centre["available_slots_7d"], 6);
    assert!(centre["next_slot"].is_string());
    assert!(centre["distance_km"].as_f64().unwrap() < 1.0);
    let page = p.http.get(p.url("/api/v1/centres/metz-arsenal")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(remaining(&p, "metz-arsenal", &slots[0]).await, 2);

    // Book; the same key and body again is the same booking.
    let body = booking_body(&slots[0], &attestation, "Jeanne", "Dupont", "1940-03-02");
    let created = p.book("citizen-1-attempt", &body).await;
    assert_eq!(created.status(), 201);
    let booking: Value = created.json().await.unwrap();
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["appointments"][0]["dose"], 1);
    assert_eq!(booking["appointments"][0]["slot_id"], slots[0].as_str());
    assert_eq!(booking["appointments"][0]["centre_id"], "metz-arsenal");
    let reference = booking["reference"].as_str().unwrap().to_owned();
    let secret = booking["secret"].as_str().unwrap().to_owned();
    let retried = p.book("citizen-1-attempt", &body).await;
    assert_eq!(retried.status(), 200);
    let replay: Value = retried.json().await.unwrap();
    assert_eq!(replay["reference"], reference.as_str());
    assert_eq!(replay["secret"], secret.as_str());
    assert_eq!(remaining(&p, "metz-arsenal", &slots[0]).await, 1);

    // The same key with another body, and the same person again, are refused.
    let other_body = booking_body(&slots[1], &attestation, "Jeanne", "Dupont", "1940-03-02");
    assert_eq!(problem_type(p.book("citizen-1-attempt", &other_body).await, 409).await, "idempotency-conflict");
    assert_eq!(problem_type(p.book("citizen-1-second", &other_body).await, 409).await, "already-booked");
    // An attestation works only for the birth date it was issued for.
    let borrowed = booking_body(&slots[1], &attestation, "Paul", "Dupont", "1941-05-05");
    assert_eq!(problem_type(p.book("paul", &borrowed).await, 403).await, "invalid-attestation");
    let none = booking_body(&slots[1], "", "Paul", "Dupont", "1941-05-05");
    assert_eq!(problem_type(p.book("paul", &none).await, 403).await, "not-eligible");

    // Look it up with the secret; a wrong secret looks like no booking.
    let url = p.url(&format!("/api/v1/bookings/{reference}"));
    let got = p.http.get(&url).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(got.status(), 200);
    let got: Value = got.json().await.unwrap();
    assert_eq!(got["status"], "confirmed");
    assert!(got.get("secret").is_none());
    assert_eq!(problem_type(p.http.get(&url).bearer_auth("wrong").send().await.unwrap(), 404).await, "not-found");
    let unknown = p.url("/api/v1/bookings/ZZZZ-ZZZZ");
    assert_eq!(problem_type(p.http.get(&unknown).bearer_auth(&secret).send().await.unwrap(), 404).await, "not-found");

    // Cancel (twice: it is idempotent); the place comes back.
    for _ in 0..2 {
        let cancelled = p.http.delete(&url).bearer_auth(&secret).send().await.unwrap();
        assert_eq!(cancelled.status(), 200);
        let cancelled: Value = cancelled.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled");
    }
    assert_eq!(remaining(&p, "metz-arsenal", &slots[0]).await, 2);

    // One confirmation and one cancellation reached the citizen.
    let messages = p.messages(2).await;
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.contains("To: jeanne.dupont@example.fr") && m.contains(&reference)));
    let confirmation = messages.iter().find(|m| m.contains("est confirmé")).expect("a confirmation");
    assert!(confirmation.contains("Centre de vaccination metz-arsenal, 3 avenue Ney, 57000 Metz"));
    assert!(confirmation.contains(&secret));
    assert!(messages.iter().any(|m| m.contains("a été annulé")));

    // Bad input is a 422, never a 500.
    let unknown_postcode = p.http.get(p.url("/api/v1/centres?postcode=99999")).send().await.unwrap();
    assert_eq!(problem_type(unknown_postcode, 422).await, "validation");
    let bad_vaccine = p.http.get(p.url("/api/v1/centres?postcode=57000&vaccine=sputnik")).send().await.unwrap();
    assert_eq!(problem_type(bad_vaccine, 422).await, "validation");
    for query in ["dose=third", "time_of_day=night"] {
        let bad = p.http.get(p.url(&format!("/api/v1/centres?postcode=57000&{query}"))).send().await.unwrap();
        assert_eq!(problem_type(bad, 422).await, "validation", "{query}");
    }
    let filtered: Value = p
        .http
        .get(p.url("/api/v1/centres?postcode=57000&dose=second&time_of_day=morning"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let centre = filtered["centres"].as_array().unwrap().iter().find(|c| c["id"] == "metz-arsenal").unwrap();
    assert_eq!(centre["available_slots_7d"], 0, "Janssen gives no second doses");
    let bad_date = p
        .http
        .post(p.url("/api/v1/eligibility"))
        .json(&serde_json::json!({"birth_date": "1940-13-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem_type(bad_date, 422).await, "validation");
    let bad_slots = p.http.get(p.url("/api/v1/centres/metz-arsenal/slots?from=tomorrow")).send().await.unwrap();
    assert_eq!(problem_type(bad_slots, 422).await, "validation");
    let no_centre = p.http.get(p.url("/api/v1/centres/nowhere")).send().await.unwrap();
    assert_eq!(problem_type(no_centre, 404).await, "not-found");

    p.platform.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn citizen_flow_postgres() {
    a_citizen_checks_finds_books_and_cancels(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn citizen_flow_sqlite() {
    a_citizen_checks_finds_books_and_cancels(Backend::Sqlite).await;
}

/// Availability is never a stale cache: once the last place of a centre
/// is booked, search stops offering the centre within a second.
#[tokio::test(flavor = "multi_thread")]
async fn search_reflects_a_booking_within_a_second() {
    let Some(p) = spawn_platform(Backend::Postgres).await else { return };
    let slots = p.centre_with_slots("metz-last-place", 1, 1).await;
    let search = || async {
        let found: Value =
            p.http.get(p.url("/api/v1/centres?postcode=57000&radius_km=5")).send().await.unwrap().json().await.unwrap();
        found["centres"].as_array().unwrap().iter().find(|c| c["id"] == "metz-last-place").cloned().unwrap()
    };
    assert_eq!(search().await["available_slots_7d"], 1);
    let attestation = p.attestation("1940-03-02").await;
    let booked = p.book("last-place", &booking_body(&slots[0], &attestation, "Jeanne", "Dupont", "1940-03-02")).await;
    assert_eq!(booked.status(), 201);
    let booked_at = std::time::Instant::now();
    loop {
        let centre = search().await;
        if centre["available_slots_7d"] == 0 && centre["next_slot"].is_null() {
            break;
        }
        assert!(booked_at.elapsed() < std::time::Duration::from_secs(1), "still offered after 1 s: {centre}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    println!("search stopped offering the centre {:?} after the booking", booked_at.elapsed());
    p.platform.stop().await.unwrap();
}

/// Search, centre and slot-list answers can be kept by an edge cache for a
/// second and revalidated: the same answer is a 304 without a body, and a
/// booking changes the validator of every answer it changes.
#[tokio::test(flavor = "multi_thread")]
async fn answers_carry_validators_an_edge_cache_can_use() {
    let Some(p) = spawn_platform(Backend::Sqlite).await else { return };
    let slots = p.centre_with_slots("metz-cached", 2, 1).await;
    let paths = [
        "/api/v1/centres?postcode=57000&radius_km=5",
        "/api/v1/centres/metz-cached",
        "/api/v1/centres/metz-cached/slots?days=7",
    ];
    let mut etags = Vec::new();
    for path in paths {
        let first = p.http.get(p.url(path)).send().await.unwrap();
        assert_eq!(first.status(), 200, "{path}");
        assert_eq!(first.headers()["cache-control"], "public, max-age=1, stale-while-revalidate=5", "{path}");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "a strong validator: {etag}");
        let again = p.http.get(p.url(path)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        assert!(again.bytes().await.unwrap().is_empty());
        etags.push(etag);
    }
    let attestation = p.attestation("1940-03-02").await;
    let booked = p.book("cached", &booking_body(&slots[0], &attestation, "Jeanne", "Dupont", "1940-03-02")).await;
    assert_eq!(booked.status(), 201);
    assert_eq!(booked.headers()["cache-control"], "no-store", "a booking is one person's");
    for (path, etag) in paths.iter().zip(&etags) {
        let mut changed = false;
        for _ in 0..20 {
            let now = p.http.get(p.url(path)).header("if-none-match", etag).send().await.unwrap();
            if now.status() == 200 {
                assert_ne!(now.headers()["etag"].to_str().unwrap(), etag);
                changed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(changed, "{path} still answers 304 two seconds after a booking changed it");
    }
    p.platform.stop().await.unwrap();
}

/// The open-data feed in the SMART Scheduling Links shape, parsed back:
/// every Slot's Schedule and every Schedule's Location exist, and
/// aggregators can poll it cheaply with its ETag.
#[tokio::test(flavor = "multi_thread")]
async fn the_open_data_feed_parses_back() {
    let Some(p) = spawn_platform(Backend::Sqlite).await else { return };
    let slots = p.centre_with_slots("metz-feed", 3, 2).await;
    let attestation = p.attestation("1940-03-02").await;
    assert_eq!(
        p.book("feed-1", &booking_body(&slots[0], &attestation, "Jeanne", "Dupont", "1940-03-02")).await.status(),
        201
    );

    // The feed is rebuilt in the background every ten seconds, from the
    // directory's availability, which follows the booking within a second.
    let mut directory = creneau_proto::centre_directory::v1::centre_directory_client::CentreDirectoryClient::new(
        creneau_kit::testing::channel(p.platform.port("centre-directory")).await,
    );
    crate::helpers::settled(&mut directory).await;
    let booked_at = chrono::Utc::now();
    let manifest_url = p.url("/api/v1/open-data/$bulk-publish");
    loop {
        let body: Value = p.http.get(&manifest_url).send().await.unwrap().json().await.unwrap();
        let built = chrono::DateTime::parse_from_rfc3339(body["transactionTime"].as_str().unwrap()).unwrap();
        if built > booked_at {
            break;
        }
        assert!(chrono::Utc::now() - booked_at < chrono::Duration::seconds(25), "the feed was not rebuilt");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let manifest = p.http.get(&manifest_url).send().await.unwrap();
    assert_eq!(manifest.status(), 200);
    assert!(manifest.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let etag = manifest.headers()["etag"].to_str().unwrap().to_owned();
    let manifest: Value = manifest.json().await.unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(manifest["transactionTime"].as_str().unwrap()).is_ok());
    assert_eq!(manifest["error"], serde_json::json!([]));
    let outputs = manifest["output"].as_array().unwrap();
    let types: Vec<&str> = outputs.iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Location", "Schedule", "Slot"]);

    let mut files: std::collections::HashMap<String, Vec<Value>> = std::collections::HashMap::new();
    for output in outputs {
        let url = output["url"].as_str().unwrap();
        let path = &url[url.find("/api/").unwrap()..];
        let body = p.http.get(p.url(path)).send().await.unwrap().text().await.unwrap();
        let resources: Vec<Value> =
            body.lines().map(|l| serde_json::from_str(l).expect("one JSON resource per line")).collect();
        assert!(resources.iter().all(|r| r["resourceType"] == output["type"]));
        files.insert(output["type"].as_str().unwrap().to_owned(), resources);
    }
    let location_ids: Vec<&str> = files["Location"].iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(location_ids, ["metz-feed"]);
    let location = &files["Location"][0];
    assert!(location["position"]["latitude"].is_f64() && location["address"]["postalCode"] == "57000");
    for schedule in &files["Schedule"] {
        let actor = schedule["actor"][0]["reference"].as_str().unwrap();
        assert!(location_ids.iter().any(|id| actor == format!("Location/{id}")));
        assert_eq!(schedule["extension"][0]["valueCoding"]["code"], "212", "Janssen's CVX code");
    }
    // A Slot is a part of a day with its places left: three slots of two
    // places, one booked.
    let slots_out = &files["Slot"];
    assert!(!slots_out.is_empty() && slots_out.len() <= 3);
    let mut places = 0;
    for slot in slots_out {
        let schedule = slot["schedule"]["reference"].as_str().unwrap();
        assert!(files["Schedule"].iter().any(|s| schedule == format!("Schedule/{}", s["id"].as_str().unwrap())));
        let start = chrono::DateTime::parse_from_rfc3339(slot["start"].as_str().unwrap()).unwrap();
        assert!(start < chrono::DateTime::parse_from_rfc3339(slot["end"].as_str().unwrap()).unwrap());
        assert_eq!(slot["status"], "free");
        places += slot["extension"][1]["valueInteger"].as_i64().unwrap();
    }
    assert_eq!(places, 5, "five of six places left");

    let again =
        p.http.get(p.url("/api/v1/open-data/$bulk-publish")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    p.platform.stop().await.unwrap();
}
