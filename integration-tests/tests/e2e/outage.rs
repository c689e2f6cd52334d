//! Notification down while citizens book: nothing acknowledged is lost.

use std::collections::HashMap;
use std::time::Duration;

use creneau_kit::testing::Backend;
use serde_json::Value;

use crate::helpers::{booking_body, spawn_platform};

async fn bookings_during_an_outage_are_notified_once_it_is_back(backend: Backend) {
    let Some(mut p) = spawn_platform(backend).await else { return };
    let slots = p.centre_with_slots("metz-outage", 1, 20).await;
    p.platform.stop_service("notification").await.unwrap();

    let mut references = Vec::new();
    for i in 0..6 {
        let birth = format!("1940-01-{:02}", i + 1);
        let attestation = p.attestation(&birth).await;
        let response = p
            .book(&format!("outage-{i}"), &booking_body(&slots[0], &attestation, &format!("P{i}"), "Durand", &birth))
            .await;
        assert_eq!(response.status(), 201, "booking does not depend on notification");
        let body: Value = response.json().await.unwrap();
        references.push(body["reference"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(p.messages_now().is_empty());
    assert_eq!(p.scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL").await, 6);

    p.platform.start_service("notification").await.unwrap();
    let messages = p.messages(6).await;
    assert_eq!(messages.len(), 6, "each booking notified exactly once");
    let mut per_reference: HashMap<&str, usize> = HashMap::new();
    for reference in &references {
        per_reference.insert(reference, messages.iter().filter(|m| m.contains(reference.as_str())).count());
    }
    assert!(per_reference.values().all(|n| *n == 1), "{per_reference:?}");
    p.platform.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn notification_outage_postgres() {
    bookings_during_an_outage_are_notified_once_it_is_back(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn notification_outage_sqlite() {
    bookings_during_an_outage_are_notified_once_it_is_back(Backend::Sqlite).await;
}
