use creneau_kit::attestation::Signer;
use creneau_kit::errors::reason as r;
use creneau_proto::slot_inventory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, reason};

async fn a_booking_takes_a_place_and_writes_one_event(app: TestApp) {
    let slot = app.slot("metz-1", 24, 2).await;
    let booking = app.book(app.request(&slot, "Jeanne", "Dupont", "1940-03-02", "key-1")).await.unwrap();
    assert_eq!(booking.status, "confirmed");
    assert!(!booking.replayed);
    assert_eq!(booking.reference.len(), 9);
    assert!(booking.secret.as_deref().is_some_and(|s| s.len() >= 22), "≥ 128 bits of secret");
    assert_eq!(booking.appointments.len(), 1);
    assert_eq!(booking.appointments[0].slot_id, slot);
    assert_eq!(booking.appointments[0].centre_id, "metz-1");
    assert_eq!(app.scalar("SELECT booked FROM slots").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'booking.confirmed'").await, 1);
    // The secret is stored hashed, never as given.
    let secret = booking.secret.unwrap();
    let stored = app.scalar(&format!("SELECT COUNT(*) FROM bookings WHERE secret_hash = '{secret}'")).await;
    assert_eq!(stored, 0);
}

async fn a_retry_with_the_same_key_returns_the_same_booking(app: TestApp) {
    let slot = app.slot("metz-1", 24, 5).await;
    let request = app.request(&slot, "Jeanne", "Dupont", "1940-03-02", "key-1");
    let first = app.book(request.clone()).await.unwrap();
    let again = app.book(request.clone()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.reference, first.reference);
    assert_eq!(again.secret, first.secret);
    assert_eq!(app.scalar("SELECT booked FROM slots").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 1);

    let mut different = request;
    different.citizen.as_mut().unwrap().email = Some("other@example.fr".into());
    let err = app.book(different).await.unwrap_err();
    assert_eq!(reason(&err), r::IDEMPOTENCY_CONFLICT);
}

async fn one_active_booking_per_person(app: TestApp) {
    let slot = app.slot("metz-1", 24, 5).await;
    let other = app.slot("lyon-1", 48, 5).await;
    app.book(app.request(&slot, "Élodie", "D'Arc", "1940-03-02", "k1")).await.unwrap();
    // Same person written differently, at another centre, with another key.
    let err = app.book(app.request(&other, "elodie", "d arc", "1940-03-02", "k2")).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), r::ALREADY_BOOKED);
    assert_eq!(app.scalar("SELECT SUM(booked) FROM slots").await, 1, "the refused booking took no place");
    // A namesake born another day is someone else.
    app.book(app.request(&other, "Élodie", "D'Arc", "1950-03-02", "k3")).await.unwrap();
}

async fn a_full_slot_refuses_bookings(app: TestApp) {
    let slot = app.slot("metz-1", 24, 1).await;
    app.book(app.request(&slot, "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    let err = app.book(app.request(&slot, "Paul", "Durand", "1941-01-01", "k2")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), r::SLOT_FULL);
    // The refused request left no trace: its key can be used again.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM idempotency_keys").await, 1);
}

async fn attestations_are_checked(app: TestApp) {
    let slot = app.slot("metz-1", 24, 5).await;
    let mut missing = app.request(&slot, "Anne", "Martin", "1940-01-01", "k1");
    missing.attestation = String::new();
    assert_eq!(reason(&app.book(missing).await.unwrap_err()), r::NOT_ELIGIBLE);

    let mut forged = app.request(&slot, "Anne", "Martin", "1940-01-01", "k2");
    let stranger = Signer::parse(&Signer::generate_spec("test")).unwrap();
    forged.attestation =
        stranger.sign("1940-01-01".parse().unwrap(), 1, chrono::Utc::now(), chrono::Duration::minutes(5));
    let err = app.book(forged).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), r::INVALID_ATTESTATION);

    // An attestation is bound to the birth date it was issued for.
    let mut borrowed = app.request(&slot, "Anne", "Martin", "1990-01-01", "k3");
    borrowed.attestation = app.attestation("1940-01-01");
    assert_eq!(reason(&app.book(borrowed).await.unwrap_err()), r::INVALID_ATTESTATION);

    let mut expired = app.request(&slot, "Anne", "Martin", "1940-01-01", "k4");
    expired.attestation = app.signer.sign(
        "1940-01-01".parse().unwrap(),
        1,
        chrono::Utc::now() - chrono::Duration::hours(2),
        chrono::Duration::minutes(30),
    );
    assert_eq!(reason(&app.book(expired).await.unwrap_err()), r::INVALID_ATTESTATION);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM bookings").await, 0);
}

async fn bad_input_is_an_invalid_argument(app: TestApp) {
    let slot = app.slot("metz-1", 24, 5).await;
    type Mutation = Box<dyn Fn(&mut pb::BookRequest)>;
    let cases: Vec<Mutation> = vec![
        Box::new(|r| r.idempotency_key = String::new()),
        Box::new(|r| r.citizen = None),
        Box::new(|r| r.citizen.as_mut().unwrap().email = None),
        Box::new(|r| r.citizen.as_mut().unwrap().email = Some("not-an-email".into())),
        Box::new(|r| r.citizen.as_mut().unwrap().birth_date = "1940-02-30".into()),
        Box::new(|r| r.citizen.as_mut().unwrap().first_name = "  ".into()),
    ];
    for (i, mutate) in cases.iter().enumerate() {
        let mut request = app.request(&slot, "Anne", "Martin", "1940-01-01", &format!("k{i}"));
        mutate(&mut request);
        let err = app.book(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "case {i}: {err:?}");
        assert_eq!(reason(&err), r::VALIDATION);
    }
    let unknown_slot = app.request("no-such-slot", "Anne", "Martin", "1940-01-01", "k-unknown");
    assert_eq!(reason(&app.book(unknown_slot).await.unwrap_err()), r::VALIDATION);
    // A phone alone is enough.
    let mut by_phone = app.request(&slot, "Anne", "Martin", "1940-01-01", "k-phone");
    let citizen = by_phone.citizen.as_mut().unwrap();
    citizen.email = None;
    citizen.phone = Some("06 12 34 56 78".into());
    app.book(by_phone).await.unwrap();
}

async fn get_and_cancel_need_the_secret(app: TestApp) {
    let slot = app.slot("metz-1", 24, 1).await;
    let booking = app.book(app.request(&slot, "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    let secret = booking.secret.clone().unwrap();
    let mut client = app.client.clone();

    let fetched = client
        .get_appointment(pb::GetAppointmentRequest {
            reference: booking.reference.to_lowercase().replace('-', ""),
            secret: secret.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.reference, booking.reference);
    assert!(fetched.secret.is_none(), "the secret is only ever returned by Book");

    for (reference, secret) in
        [(booking.reference.as_str(), "wrong"), ("ZZZZ-ZZZZ", secret.as_str()), ("not a reference", "x")]
    {
        let err = client
            .get_appointment(pb::GetAppointmentRequest { reference: reference.into(), secret: secret.into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err =
            client.cancel(pb::CancelRequest { reference: reference.into(), secret: secret.into() }).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }

    let cancel = pb::CancelRequest { reference: booking.reference.clone(), secret };
    let cancelled = client.cancel(cancel.clone()).await.unwrap().into_inner();
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(app.scalar("SELECT booked FROM slots").await, 0, "the place is given back");
    let again = client.cancel(cancel).await.unwrap().into_inner();
    assert_eq!(again.status, "cancelled");
    assert_eq!(app.scalar("SELECT booked FROM slots").await, 0, "cancelling twice frees once");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'booking.cancelled'").await, 1);

    // The person may book again, and the freed place can be taken.
    app.book(app.request(&slot, "Anne", "Martin", "1940-01-01", "k2")).await.unwrap();
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    a_booking_takes_a_place_and_writes_one_event,
    a_retry_with_the_same_key_returns_the_same_booking,
    one_active_booking_per_person,
    a_full_slot_refuses_bookings,
    attestations_are_checked,
    bad_input_is_an_invalid_argument,
    get_and_cancel_need_the_secret,
);
