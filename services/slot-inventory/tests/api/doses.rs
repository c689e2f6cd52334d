//! First and second dose together, boosters, and moving appointments.

use creneau_kit::errors::reason as r;
use creneau_proto::slot_inventory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, reason};

async fn a_first_dose_books_the_earliest_second_dose_inside_the_interval(app: TestApp) {
    // Pfizer: 21 to 42 days apart.
    let ids = app.days("pfizer", "metz-1", &[0, 20, 25, 30, 50], 2).await;
    let booking = app.book(app.request(&ids[0], "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    let doses: Vec<(u32, &str)> = booking.appointments.iter().map(|a| (a.dose, a.slot_id.as_str())).collect();
    assert_eq!(doses, [(1, ids[0].as_str()), (2, ids[2].as_str())], "day 20 is too early, day 25 is the earliest");
    assert_eq!(app.booked(&ids[0]).await, 1);
    assert_eq!(app.booked(&ids[2]).await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 1, "one event for the pair");

    // A chosen second slot is honoured, if it fits.
    let mut chosen = app.request(&ids[0], "Paul", "Durand", "1941-01-01", "k2");
    chosen.second_slot_id = Some(ids[3].clone());
    let booking = app.book(chosen).await.unwrap();
    assert_eq!(booking.appointments[1].slot_id, ids[3]);
    let mut before_first = app.request(&ids[3], "Zoé", "Petit", "1942-01-01", "k3");
    before_first.second_slot_id = Some(ids[1].clone());
    let err = app.book(before_first).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // The first slot is now full; the second-dose slots still have room.
    let err = app.book(app.request(&ids[0], "Léa", "Roux", "1943-01-01", "k4")).await.unwrap_err();
    assert_eq!(reason(&err), r::SLOT_FULL);
}

async fn no_second_dose_means_no_first_dose(app: TestApp) {
    let ids = app.days("moderna", "metz-1", &[0, 10, 60], 5).await;
    let err = app.book(app.request(&ids[0], "Anne", "Martin", "1940-01-01", "k1")).await.unwrap_err();
    assert_eq!(reason(&err), r::NO_SECOND_DOSE_SLOT);
    assert!(err.message().contains("second dose"), "{}", err.message());
    assert_eq!(app.scalar("SELECT SUM(booked) FROM slots").await, 0, "both or neither");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM bookings").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 0);
}

async fn second_doses_are_capacity_too(app: TestApp) {
    // Two first-dose places, one second-dose place: the centre cannot sell
    // a first dose it could not follow up.
    let first = app.days("pfizer", "metz-1", &[0], 2).await.remove(0);
    let second = app.days("pfizer", "metz-1", &[21], 1).await.remove(0);
    app.book(app.request(&first, "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    let err = app.book(app.request(&first, "Paul", "Durand", "1941-01-01", "k2")).await.unwrap_err();
    assert_eq!(reason(&err), r::NO_SECOND_DOSE_SLOT);
    assert_eq!((app.booked(&first).await, app.booked(&second).await), (1, 1));
}

async fn cancelling_the_first_dose_cancels_the_second(app: TestApp) {
    let ids = app.days("pfizer", "metz-1", &[0, 22], 3).await;
    let booking = app.book(app.request(&ids[0], "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    app.client
        .clone()
        .cancel(pb::CancelRequest { reference: booking.reference, secret: booking.secret.unwrap() })
        .await
        .unwrap();
    assert_eq!(app.booked(&ids[0]).await, 0);
    assert_eq!(app.booked(&ids[1]).await, 0);
}

async fn boosters_wait_after_the_last_dose_and_coexist_with_the_primary_series(app: TestApp) {
    let ids = app.days("pfizer", "metz-1", &[0, 22], 3).await;
    app.book(app.request(&ids[0], "Anne", "Martin", "1940-01-01", "primary")).await.unwrap();

    let booster = |last: &str, key: &str| {
        let mut request = app.request(&ids[0], "Anne", "Martin", "1940-01-01", key);
        request.dose = 3;
        request.last_dose_date = Some(last.into());
        request.attestation = app.attestation_for("1940-01-01", 3);
        request
    };
    let recent = (chrono::Utc::now() - chrono::Duration::days(30)).date_naive().to_string();
    let err = app.book(booster(&recent, "b1")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("90 days"));

    let long_ago = (chrono::Utc::now() - chrono::Duration::days(200)).date_naive().to_string();
    let booked = app.book(booster(&long_ago, "b2")).await.unwrap();
    assert_eq!(booked.appointments.len(), 1);
    assert_eq!(booked.appointments[0].dose, 3);
    // A first-dose attestation does not book a booster.
    let mut wrong = booster(&long_ago, "b3");
    wrong.attestation = app.attestation("1940-01-01");
    assert_eq!(reason(&app.book(wrong).await.unwrap_err()), r::INVALID_ATTESTATION);
}

async fn rescheduling_moves_the_pair_atomically(app: TestApp) {
    let ids = app.days("pfizer", "metz-1", &[0, 1, 22, 40, 45], 2).await;
    let booking = app.book(app.request(&ids[0], "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    assert_eq!(booking.appointments[1].slot_id, ids[2]);
    let (reference, secret) = (booking.reference.clone(), booking.secret.clone().unwrap());
    let mut client = app.client.clone();
    let reschedule = |dose: u32, slot: &str, second: Option<&str>| pb::RescheduleRequest {
        reference: reference.clone(),
        secret: secret.clone(),
        dose,
        slot_id: slot.into(),
        second_slot_id: second.map(Into::into),
    };

    // First dose a day later: day 22 is still inside 21..42 days, it stays.
    let moved = client.reschedule(reschedule(1, &ids[1], None)).await.unwrap().into_inner();
    assert_eq!(
        (moved.appointments[0].slot_id.as_str(), moved.appointments[1].slot_id.as_str()),
        (ids[1].as_str(), ids[2].as_str())
    );
    assert_eq!((app.booked(&ids[0]).await, app.booked(&ids[1]).await), (0, 1));

    // The second dose alone, inside the interval; outside it is refused.
    let moved = client.reschedule(reschedule(2, &ids[3], None)).await.unwrap().into_inner();
    assert_eq!(moved.appointments[1].slot_id, ids[3]);
    assert_eq!((app.booked(&ids[2]).await, app.booked(&ids[3]).await), (0, 1));
    let err = client.reschedule(reschedule(2, &ids[4], None)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Back to day 0 with the second dose chosen explicitly.
    let moved = client.reschedule(reschedule(1, &ids[0], Some(&ids[2]))).await.unwrap().into_inner();
    assert_eq!(
        (moved.appointments[0].slot_id.as_str(), moved.appointments[1].slot_id.as_str()),
        (ids[0].as_str(), ids[2].as_str())
    );
    assert_eq!(app.scalar("SELECT SUM(booked) FROM slots").await, 2, "always exactly two places");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'booking.moved'").await, 3);

    // A move that cannot be completed changes nothing.
    let janssen = app.days("janssen", "metz-1", &[3], 1).await;
    let err = client.reschedule(reschedule(1, &janssen[0], None)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "another vaccine");
    assert_eq!(app.scalar("SELECT SUM(booked) FROM slots").await, 2);
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    a_first_dose_books_the_earliest_second_dose_inside_the_interval,
    no_second_dose_means_no_first_dose,
    second_doses_are_capacity_too,
    cancelling_the_first_dose_cancels_the_second,
    boosters_wait_after_the_last_dose_and_coexist_with_the_primary_series,
    rescheduling_moves_the_pair_atomically,
);
