//! Many clients at once against one service: the database, not luck,
//! decides who gets the places.

use std::collections::HashSet;

use creneau_kit::errors::reason as r;
use futures::future::join_all;

use crate::helpers::{TestApp, reason};

async fn two_hundred_clients_for_seven_places(app: TestApp) {
    let slot = app.slot("metz-1", 24, 7).await;
    let attempts = (0..200).map(|i| {
        let request = app.request(&slot, &format!("Prénom{i}"), "Nom", "1940-01-01", &format!("key-{i}"));
        let app = &app;
        async move { app.book(request).await }
    });
    let results = join_all(attempts).await;
    let confirmed = results.iter().filter(|r| r.is_ok()).count();
    let full = results.iter().filter(|r| matches!(r, Err(e) if reason(e) == r::SLOT_FULL)).count();
    println!("[{:?}] 200 attempts on 7 places: {confirmed} confirmed, {full} slot-full", app.backend);
    assert_eq!(confirmed, 7);
    assert_eq!(full, 193, "every other attempt is told the slot is full: {results:?}");
    assert_eq!(app.scalar("SELECT booked FROM slots").await, 7);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'").await, 7);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 7);
}

async fn fifty_concurrent_retries_book_once(app: TestApp) {
    let slot = app.slot("metz-1", 24, 10).await;
    let request = app.request(&slot, "Anne", "Martin", "1940-01-01", "the-same-key");
    let results = join_all((0..50).map(|_| app.book(request.clone()))).await;
    let references: HashSet<String> =
        results.iter().map(|r| r.as_ref().expect("every retry succeeds").reference.clone()).collect();
    assert_eq!(references.len(), 1, "one booking, whatever the interleaving");
    assert_eq!(results.iter().filter(|r| !r.as_ref().unwrap().replayed).count(), 1);
    assert_eq!(app.scalar("SELECT booked FROM slots").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox").await, 1);
}

async fn one_person_racing_on_many_slots_books_once(app: TestApp) {
    let mut slots = Vec::new();
    for hours in 1..=10 {
        slots.push(app.slot(&format!("centre-{hours}"), hours, 5).await);
    }
    let attempts = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| app.book(app.request(slot, "Anne", "Martin", "1940-01-01", &format!("key-{i}"))));
    let results = join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| reason(e) == r::ALREADY_BOOKED));
    assert_eq!(app.scalar("SELECT SUM(booked) FROM slots").await, 1);
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    two_hundred_clients_for_seven_places,
    fifty_concurrent_retries_book_once,
    one_person_racing_on_many_slots_books_once,
);
