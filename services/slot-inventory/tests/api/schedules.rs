//! Staff operations: schedules, closing slots, cancelling or moving a day.

use chrono::{Datelike, Duration, Utc};
use creneau_kit::errors::reason as r;
use creneau_proto::slot_inventory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, reason};

fn week_from_tomorrow() -> (chrono::NaiveDate, chrono::NaiveDate) {
    let start = (Utc::now() + Duration::days(1)).date_naive();
    (start, start + Duration::days(6))
}

fn schedule(vaccine: &str, start: chrono::NaiveDate, end: chrono::NaiveDate) -> pb::CreateScheduleRequest {
    pb::CreateScheduleRequest {
        centre_id: "metz-1".into(),
        vaccine: vaccine.into(),
        start_date: start.to_string(),
        end_date: end.to_string(),
        weekdays: vec![1, 2, 3, 4, 5, 6, 7],
        opens: "09:00".into(),
        closes: "12:00".into(),
        slot_minutes: 30,
        lines: 2,
        time_zone: "Europe/Paris".into(),
    }
}

async fn a_schedule_generates_slots_once(app: TestApp) {
    let (start, end) = week_from_tomorrow();
    let mut client = app.client.clone();
    let first = client.create_schedule(schedule("janssen", start, end)).await.unwrap().into_inner();
    assert_eq!(first.slots_total, 7 * 6);
    assert_eq!(first.slots_created, 7 * 6);
    let again = client.create_schedule(schedule("janssen", start, end)).await.unwrap().into_inner();
    assert_eq!((again.schedule_id, again.slots_created, again.slots_total), (first.schedule_id, 0, 42));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM slots").await, 42);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM schedules").await, 1);
    assert_eq!(app.scalar("SELECT MIN(capacity) FROM slots").await, 2);

    let mut bad = schedule("janssen", start, end);
    bad.closes = "08:00".into();
    assert_eq!(client.create_schedule(bad).await.unwrap_err().code(), Code::InvalidArgument);
}

async fn closed_slots_sell_nothing(app: TestApp) {
    let slot = app.slot("metz-1", 24, 5).await;
    let booked = app.book(app.request(&slot, "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    let closed = app.client.clone().close_slots(pb::CloseSlotsRequest { slot_ids: vec![slot.clone()] }).await.unwrap();
    assert_eq!(closed.into_inner().closed, 1);
    let err = app.book(app.request(&slot, "Paul", "Durand", "1941-01-01", "k2")).await.unwrap_err();
    assert_eq!(reason(&err), r::SLOT_FULL);
    assert!(err.message().contains("closed"));
    // The appointment already there stays.
    let kept = app
        .client
        .clone()
        .get_appointment(pb::GetAppointmentRequest { reference: booked.reference, secret: booked.secret.unwrap() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.status, "confirmed");
}

/// Books `n` single-dose appointments on the first day of the schedule;
/// returns their references.
async fn fill_first_day(app: &TestApp, n: usize) -> Vec<String> {
    let (start, end) = week_from_tomorrow();
    app.client.clone().create_schedule(schedule("janssen", start, end)).await.unwrap();
    let day = app
        .client
        .clone()
        .list_slots(pb::ListSlotsRequest {
            centre_id: "metz-1".into(),
            from: start.to_string(),
            days: 1,
            available_only: true,
        })
        .await
        .unwrap()
        .into_inner()
        .slots;
    let mut references = Vec::new();
    for i in 0..n {
        let booking = app
            .book(app.request(&day[i % day.len()].id, &format!("P{i}"), "Martin", "1940-01-01", &format!("k{i}")))
            .await
            .unwrap();
        references.push(booking.reference);
    }
    references
}

fn session(move_to: Option<chrono::NaiveDate>) -> pb::CancelSessionRequest {
    let (start, _) = week_from_tomorrow();
    pb::CancelSessionRequest {
        centre_id: "metz-1".into(),
        date: start.to_string(),
        time_zone: "Europe/Paris".into(),
        reason: "livraison de vaccins annulée".into(),
        move_to_date: move_to.map(|d| d.to_string()),
        ..Default::default()
    }
}

async fn cancelling_a_day_tells_every_citizen_once(app: TestApp) {
    let references = fill_first_day(&app, 8).await;
    let mut client = app.client.clone();
    let outcome = client.cancel_session(session(None)).await.unwrap().into_inner();
    assert_eq!((outcome.cancelled, outcome.moved, outcome.slots_closed), (8, 0, 6));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'").await, 0);
    assert_eq!(app.scalar("SELECT SUM(booked) FROM slots").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'booking.cancelled'").await, 8);
    // Again: nothing left to do, nobody told twice.
    let again = client.cancel_session(session(None)).await.unwrap().into_inner();
    assert_eq!((again.cancelled, again.moved, again.slots_closed), (0, 0, 0));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'booking.cancelled'").await, 8);
    assert_eq!(references.len(), 8);
}

async fn moving_a_day_keeps_times_and_tells_every_citizen_once(app: TestApp) {
    fill_first_day(&app, 8).await;
    let (start, _) = week_from_tomorrow();
    let target = start + Duration::days(1);
    let mut client = app.client.clone();
    let outcome = client.cancel_session(session(Some(target))).await.unwrap().into_inner();
    assert_eq!((outcome.cancelled, outcome.moved), (0, 8));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'booking.moved'").await, 8);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'").await, 8);
    // Every appointment is now on the target day, at the same local time as before
    // (8 people on 6 slots of 2: the same slots, a day later).
    let day_after = app
        .client
        .clone()
        .list_slots(pb::ListSlotsRequest {
            centre_id: "metz-1".into(),
            from: target.to_string(),
            days: 1,
            available_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .slots;
    let booked: Vec<u32> = day_after.iter().map(|s| s.booked).collect();
    assert_eq!(booked, [2, 2, 1, 1, 1, 1], "the same places, a day later");
    assert_eq!(target.weekday(), (start + Duration::days(1)).weekday());
    let again = client.cancel_session(session(Some(target))).await.unwrap().into_inner();
    assert_eq!((again.cancelled, again.moved), (0, 0));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'booking.moved'").await, 8);
}

async fn a_move_without_room_cancels_with_one_message(app: TestApp) {
    fill_first_day(&app, 4).await;
    let (start, _) = week_from_tomorrow();
    // The day after the week has no slots at all.
    let outcome =
        app.client.clone().cancel_session(session(Some(start + Duration::days(30)))).await.unwrap().into_inner();
    assert_eq!((outcome.cancelled, outcome.moved), (4, 0));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 4 + 4, "4 confirmations, then 4 cancellations");
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    a_schedule_generates_slots_once,
    closed_slots_sell_nothing,
    cancelling_a_day_tells_every_citizen_once,
    moving_a_day_keeps_times_and_tells_every_citizen_once,
    a_move_without_room_cancels_with_one_message,
);
