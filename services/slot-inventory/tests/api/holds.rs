//! Holds: a place set aside while the form is filled in.

use std::time::Duration;

use creneau_kit::errors::reason as r;
use creneau_proto::slot_inventory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, reason};

async fn hold(app: &TestApp, slot: &str, attestation: &str) -> Result<pb::SlotHold, tonic::Status> {
    app.client
        .clone()
        .hold(pb::HoldRequest { slot_id: slot.into(), attestation: attestation.into() })
        .await
        .map(|r| r.into_inner())
}

async fn a_held_place_is_for_its_holder_only(app: TestApp) {
    let slot = app.slot("metz-1", 24, 1).await;
    let anne = app.attestation("1940-01-01");
    let held = hold(&app, &slot, &anne).await.unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(&held.expires_at).unwrap() > chrono::Utc::now());

    // Nobody else can hold or book the place.
    let paul = app.attestation("1941-01-01");
    assert_eq!(reason(&hold(&app, &slot, &paul).await.unwrap_err()), r::SLOT_FULL);
    assert_eq!(
        reason(&app.book(app.request(&slot, "Paul", "Durand", "1941-01-01", "p1")).await.unwrap_err()),
        r::SLOT_FULL
    );
    // Nor book with Anne's hold.
    let mut stolen = app.request("", "Paul", "Durand", "1941-01-01", "p2");
    stolen.hold_id = Some(held.hold_id.clone());
    stolen.attestation = paul;
    assert_eq!(reason(&app.book(stolen).await.unwrap_err()), r::HOLD_EXPIRED);

    // Anne books through her hold; it is used up.
    let mut mine = app.request("", "Anne", "Martin", "1940-01-01", "a1");
    mine.hold_id = Some(held.hold_id.clone());
    mine.attestation = anne.clone();
    let booking = app.book(mine.clone()).await.unwrap();
    assert_eq!(booking.appointments[0].slot_id, slot);
    assert_eq!(app.booked(&slot).await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM holds WHERE state = 'consumed'").await, 1);
    mine.idempotency_key = "a2".into();
    assert_eq!(reason(&app.book(mine).await.unwrap_err()), r::HOLD_EXPIRED);
}

async fn one_live_hold_per_holder(app: TestApp) {
    let first = app.slot("metz-1", 24, 1).await;
    let second = app.slot("metz-1", 25, 1).await;
    let anne = app.attestation("1940-01-01");
    hold(&app, &first, &anne).await.unwrap();
    hold(&app, &second, &anne).await.unwrap();
    // Holding the second gave the first back.
    let paul = app.attestation("1941-01-01");
    hold(&app, &first, &paul).await.unwrap();
    assert_eq!(app.scalar("SELECT COUNT(*) FROM holds WHERE state = 'live'").await, 2);
}

async fn releasing_gives_the_place_back(app: TestApp) {
    let slot = app.slot("metz-1", 24, 1).await;
    let anne = app.attestation("1940-01-01");
    let held = hold(&app, &slot, &anne).await.unwrap();
    let mut client = app.client.clone();
    let stranger = client
        .release_hold(pb::ReleaseHoldRequest {
            hold_id: held.hold_id.clone(),
            attestation: app.attestation("1941-01-01"),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&stranger), r::HOLD_EXPIRED);
    for _ in 0..2 {
        client
            .release_hold(pb::ReleaseHoldRequest { hold_id: held.hold_id.clone(), attestation: anne.clone() })
            .await
            .unwrap();
    }
    app.book(app.request(&slot, "Paul", "Durand", "1941-01-01", "p1")).await.unwrap();
}

async fn an_expired_hold_gives_its_place_back_by_itself(app: TestApp) {
    // This app's holds live two seconds.
    let slot = app.slot("metz-1", 24, 1).await;
    let anne = app.attestation("1940-01-01");
    let held = hold(&app, &slot, &anne).await.unwrap();
    assert_eq!(
        reason(&app.book(app.request(&slot, "Paul", "Durand", "1941-01-01", "p1")).await.unwrap_err()),
        r::SLOT_FULL
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // No sweeper ran: the place is simply free again.
    app.book(app.request(&slot, "Paul", "Durand", "1941-01-01", "p2")).await.unwrap();
    let mut late = app.request("", "Anne", "Martin", "1940-01-01", "a1");
    late.hold_id = Some(held.hold_id);
    late.attestation = anne;
    let err = app.book(late).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), r::HOLD_EXPIRED);
}

async fn idempotency_keys_expire(app: TestApp) {
    // This app's keys live two seconds.
    let slot = app.slot("metz-1", 24, 5).await;
    app.book(app.request(&slot, "Anne", "Martin", "1940-01-01", "shared-key")).await.unwrap();
    let other = app.request(&slot, "Paul", "Durand", "1941-01-01", "shared-key");
    assert_eq!(reason(&app.book(other.clone()).await.unwrap_err()), r::IDEMPOTENCY_CONFLICT);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let booking = app.book(other).await.unwrap();
    assert!(!booking.replayed, "an expired key is forgotten");
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    a_held_place_is_for_its_holder_only,
    one_live_hold_per_holder,
    releasing_gives_the_place_back,
);

mod short_lived {
    use super::*;

    creneau_kit::backend_tests!(crate::helpers::spawn_short_lived;
        an_expired_hold_gives_its_place_back_by_itself,
        idempotency_keys_expire,
    );
}
