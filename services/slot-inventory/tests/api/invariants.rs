//! The invariant checks see what they are there to see: a clean run
//! passes, and each kind of damage done by hand is counted.

use chrono::Utc;
use creneau_proto::slot_inventory::v1 as pb;
use creneau_slot_inventory::invariants;
use sea_orm::ConnectionTrait;

use crate::helpers::TestApp;

async fn violations(app: &TestApp) -> Vec<(&'static str, u64)> {
    let checks = invariants::check(&app.db, Utc::now()).await.unwrap();
    checks.into_iter().filter(|c| !c.holds()).map(|c| (c.name, c.violations)).collect()
}

async fn damage(app: &TestApp, sql: &str) {
    app.db.execute_unprepared(sql).await.unwrap();
}

async fn each_broken_invariant_is_counted(app: TestApp) {
    let ids = app.days("pfizer", "metz-1", &[0, 25], 1).await;
    let single = app.slot_of("janssen", "metz-1", 3, 2).await;
    app.book(app.request(&ids[0], "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    app.book(app.request(&single, "Paul", "Durand", "1941-01-01", "k2")).await.unwrap();
    let hold = pb::HoldRequest { slot_id: single.clone(), attestation: app.attestation("1942-01-01") };
    app.client.clone().hold(hold).await.unwrap();
    assert_eq!(violations(&app).await, [], "a clean database");

    // The schema refuses booked > capacity, but not a live hold too many.
    damage(&app, &format!("UPDATE slots SET capacity = 1 WHERE id = '{single}'")).await;
    assert_eq!(violations(&app).await, [("capacity", 1)]);
    damage(&app, &format!("UPDATE slots SET booked = 0, capacity = 2 WHERE id = '{single}'")).await;
    assert_eq!(violations(&app).await, [("slot-counts", 1)]);
    damage(&app, &format!("UPDATE slots SET booked = 1 WHERE id = '{single}'")).await;

    // A place freed twice and sold again: two appointments in one place.
    damage(&app, &format!("UPDATE appointments SET slot_id = '{}' WHERE vaccine = 'janssen'", ids[0])).await;
    assert_eq!(violations(&app).await, [("slot-counts", 2), ("appointments", 1)]);
    damage(&app, &format!("UPDATE appointments SET slot_id = '{single}' WHERE vaccine = 'janssen'")).await;

    // A lost second dose, then lost events.
    damage(&app, "DELETE FROM appointments WHERE dose = 2").await;
    damage(&app, &format!("UPDATE slots SET booked = 0 WHERE id = '{}'", ids[1])).await;
    assert_eq!(violations(&app).await, [("dose-pairs", 1)]);
    damage(&app, "DELETE FROM outbox").await;
    assert_eq!(violations(&app).await, [("confirmed-events", 2), ("dose-pairs", 1)]);
}

async fn a_person_with_two_first_doses_is_counted(app: TestApp) {
    let a = app.slot_of("janssen", "metz-1", 3, 5).await;
    let b = app.slot_of("janssen", "metz-1", 4, 5).await;
    app.book(app.request(&a, "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    app.book(app.request(&b, "Paul", "Durand", "1941-01-01", "k2")).await.unwrap();
    // As if the unique index were missing and a race slipped through.
    damage(&app, "DROP INDEX uq_bookings_active_identity_series").await;
    damage(&app, "UPDATE bookings SET identity_key = (SELECT MIN(identity_key) FROM bookings)").await;
    assert_eq!(violations(&app).await, [("one-first-dose", 1)]);
    damage(&app, "UPDATE bookings SET status = 'cancelled'").await;
    let cancelled = violations(&app).await;
    assert_eq!(cancelled, [("slot-counts", 2), ("cancelled-events", 2)], "cancelled bookings hold no dose");
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    each_broken_invariant_is_counted,
    a_person_with_two_first_doses_is_counted,
);
