//! The rush, scaled to a test: many citizens at once through the gateway,
//! on PostgreSQL.

use std::collections::BTreeMap;

use creneau_kit::testing::Backend;
use futures::future::join_all;
use serde_json::Value;

use crate::helpers::{booking_body, spawn_platform};

const CITIZENS: usize = 300;
const SLOTS: usize = 5;
const CAPACITY: u32 = 2;

#[tokio::test(flavor = "multi_thread")]
async fn three_hundred_citizens_for_ten_places() {
    let Some(p) = spawn_platform(Backend::Postgres).await else { return };
    let slots = p.centre_with_slots("metz-rush", SLOTS, CAPACITY).await;

    // Everyone checks eligibility first (birth dates differ: different people).
    let births: Vec<String> =
        (0..CITIZENS).map(|i| format!("19{:02}-{:02}-{:02}", 20 + i % 30, 1 + i % 12, 1 + i % 28)).collect();
    let attestations = join_all(births.iter().map(|b| p.attestation(b))).await;

    let attempts = (0..CITIZENS).map(|i| {
        let body = booking_body(&slots[i % SLOTS], &attestations[i], &format!("Citoyen{i}"), "Martin", &births[i]);
        let p = &p;
        async move {
            let response = p.book(&format!("rush-{i}"), &body).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    });
    let results = join_all(attempts).await;

    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (status, _) in &results {
        *by_status.entry(*status).or_default() += 1;
    }
    println!("{CITIZENS} citizens on {SLOTS} slots of {CAPACITY}: {by_status:?}");
    assert_eq!(by_status.get(&201), Some(&10), "exactly the capacity is sold");
    assert_eq!(by_status.get(&409), Some(&(CITIZENS - 10)));
    assert_eq!(by_status.len(), 2, "no other status, in particular no 5xx");
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s == 409)
            .all(|(_, body)| body["type"].as_str().unwrap().ends_with("slot-full"))
    );

    // The database agrees.
    assert_eq!(p.scalar("SELECT COUNT(*) FROM slots WHERE booked > capacity").await, 0);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM slots WHERE booked = capacity").await, SLOTS as i64);
    assert_eq!(p.scalar("SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'").await, 10);
    assert_eq!(
        p.scalar(
            "SELECT COUNT(*) FROM appointments a JOIN bookings b ON b.id = a.booking_id WHERE b.status = 'confirmed'"
        )
        .await,
        10
    );
    assert_eq!(p.scalar("SELECT COUNT(*) FROM outbox").await, 10, "one event per booking");
    p.platform.stop().await.unwrap();
}
