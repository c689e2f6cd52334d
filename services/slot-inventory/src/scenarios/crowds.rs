//! The scenarios: each a crowd of clients on one slot-inventory, then the
//! invariants checked. Each returns what its clients did; an error names
//! what did not hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use chrono::Utc;
use creneau_kit::errors::reason as r;
use creneau_proto::slot_inventory::v1 as pb;
use futures::future::join_all;
use rand::Rng;
use rand::seq::SliceRandom;

use super::{
    CLIENTS, Tally, Target, attempt, backoff, check_against_tally, check_invariants, is_back_pressure, is_conflict,
    person, pfizer_centre, reason, retry_through_back_pressure,
};
use crate::invariants;

pub async fn uniform_demand(t: &Target) -> anyhow::Result<Tally> {
    // 40 first-dose places a day over 10 days, and their second doses.
    let (firsts, _) = pfizer_centre(t, 10, 40).await;
    let tally = Tally::default();
    join_all((0..CLIENTS).map(|i| {
        let (t, tally, firsts) = (t, &tally, &firsts);
        async move {
            let (name, birth) = person(i);
            for try_ in 0..5 {
                let slot = &firsts[rand::rng().random_range(0..firsts.len())];
                if attempt(t, tally, t.request(slot, &name, "Martin", &birth, &format!("u{i}-{try_}"))).await.is_some()
                {
                    return;
                }
            }
            tally.gave_up.fetch_add(1, Relaxed);
        }
    }))
    .await;
    println!("[rush] {}", tally.summary("uniform"));
    let sold = Tally::get(&tally.confirmed);
    anyhow::ensure!(sold == 400, "400 places, 1,000 people trying five times: {sold} sold");
    check_against_tally(t, &tally).await?;
    Ok(tally)
}

pub async fn everyone_wants_the_earliest_slot(t: &Target) -> anyhow::Result<Tally> {
    // 20 single-dose slots of 20; everyone starts with the earliest and
    // moves down the list on each refusal.
    let offsets: Vec<i64> = (0..20).collect();
    let slots = t.days("janssen", "rush-centre", &offsets, 20).await;
    let tally = Tally::default();
    join_all((0..CLIENTS).map(|i| {
        let (t, tally, slots) = (t, &tally, &slots);
        async move {
            let (name, birth) = person(i);
            for (n, slot) in slots.iter().enumerate() {
                if attempt(t, tally, t.request(slot, &name, "Hot", &birth, &format!("h{i}-{n}"))).await.is_some() {
                    return;
                }
            }
            tally.gave_up.fetch_add(1, Relaxed);
        }
    }))
    .await;
    println!("[rush] {}", tally.summary("hot-spot"));
    let (sold, gave_up) = (Tally::get(&tally.confirmed), Tally::get(&tally.gave_up));
    anyhow::ensure!(
        sold == 400 && gave_up == 600,
        "nothing left unsold while people tried: {sold} sold, {gave_up} gave up"
    );
    check_against_tally(t, &tally).await?;
    Ok(tally)
}

pub async fn holds_expire_mid_run(t: &Target) -> anyhow::Result<Tally> {
    // The target's holds live two seconds. A watcher checks capacity all along.
    let offsets: Vec<i64> = (0..10).collect();
    let slots = t.days("janssen", "rush-centre", &offsets, 30).await;
    let tally = Tally::default();
    let running = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (db, running) = (t.db.clone(), running.clone());
        tokio::spawn(async move {
            let (mut checks, mut worst) = (0u64, 0u64);
            while running.load(Relaxed) {
                worst = worst.max(invariants::over_capacity(&db, Utc::now()).await?);
                checks += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok::<_, sea_orm::DbErr>((checks, worst))
        })
    };
    join_all((0..CLIENTS).map(|i| {
        let (t, tally, slots) = (t, &tally, &slots);
        async move {
            let (name, birth) = person(i);
            let attestation = t.attestation(&birth);
            let (slot, abandon, pause) = {
                let mut rng = rand::rng();
                (slots[rng.random_range(0..slots.len())].clone(), rng.random_bool(0.3), rng.random_range(0..400))
            };
            let mut try_ = 0;
            let held = loop {
                try_ += 1;
                let held = t
                    .client
                    .clone()
                    .hold(pb::HoldRequest { slot_id: slot.clone(), attestation: attestation.clone() })
                    .await;
                match held {
                    Ok(h) => break h.into_inner(),
                    Err(status) if reason(&status) == r::SLOT_FULL => {
                        tally.conflicts.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(status) if is_back_pressure(&status) && try_ < 50 => {
                        tally.shed.fetch_add(1, Relaxed);
                        backoff(try_).await;
                    }
                    Err(status) => panic!("unexpected hold answer: {status:?}"),
                }
            };
            tally.holds.fetch_add(1, Relaxed);
            if abandon {
                tally.abandoned.fetch_add(1, Relaxed);
                // Come back after the hold expired and book directly.
                tokio::time::sleep(Duration::from_millis(2200)).await;
                attempt(t, tally, t.request(&slot, &name, "Late", &birth, &format!("late{i}"))).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let mut request = t.request("", &name, "Held", &birth, &format!("held{i}"));
            request.hold_id = Some(held.hold_id);
            request.attestation = attestation;
            attempt(t, tally, request).await;
        }
    }))
    .await;
    running.store(false, Relaxed);
    let (checks, over) = watcher.await??;
    anyhow::ensure!(over == 0, "{over} slots over capacity during the run");
    println!("[rush] {}", tally.summary(&format!("holds expiring ({checks} capacity checks during the run)")));
    anyhow::ensure!(Tally::get(&tally.abandoned) > 0 && Tally::get(&tally.confirmed) > 0, "holds abandoned and kept");
    check_against_tally(t, &tally).await?;
    Ok(tally)
}

pub async fn cancellations_and_reschedules_interleaved(t: &Target) -> anyhow::Result<Tally> {
    let (firsts, _) = pfizer_centre(t, 10, 60).await;
    let tally = Tally::default();
    join_all((0..CLIENTS).map(|i| {
        let (t, tally, firsts) = (t, &tally, &firsts);
        async move {
            let (name, birth) = person(i);
            let mut order = firsts.clone();
            order.shuffle(&mut rand::rng());
            let mut booked = None;
            for (n, slot) in order.iter().take(3).enumerate() {
                booked = attempt(t, tally, t.request(slot, &name, "Busy", &birth, &format!("c{i}-{n}"))).await;
                if booked.is_some() {
                    break;
                }
            }
            let Some(booking) = booked else {
                tally.gave_up.fetch_add(1, Relaxed);
                return;
            };
            let secret = booking.secret.clone().unwrap();
            let roll: u32 = rand::rng().random_range(0..10);
            let mut client = t.client.clone();
            if roll < 2 {
                let cancel = pb::CancelRequest { reference: booking.reference.clone(), secret };
                for try_ in 1.. {
                    match client.cancel(cancel.clone()).await {
                        Ok(_) => break,
                        Err(status) if is_back_pressure(&status) && try_ < 50 => backoff(try_).await,
                        Err(status) => panic!("unexpected cancel answer: {status:?}"),
                    }
                }
                tally.cancelled.fetch_add(1, Relaxed);
            } else if roll < 4 {
                let target = &order[3 + rand::rng().random_range(0..order.len() - 3)];
                let request = pb::RescheduleRequest {
                    reference: booking.reference.clone(),
                    secret,
                    dose: 1,
                    slot_id: target.clone(),
                    second_slot_id: None,
                };
                for try_ in 1.. {
                    match client.reschedule(request.clone()).await {
                        Ok(_) => {
                            tally.moved.fetch_add(1, Relaxed);
                            break;
                        }
                        Err(status) if is_conflict(&status) => {
                            tally.conflicts.fetch_add(1, Relaxed);
                            break;
                        }
                        Err(status) if is_back_pressure(&status) && try_ < 50 => backoff(try_).await,
                        Err(status) => panic!("unexpected reschedule answer: {status:?}"),
                    }
                }
            }
        }
    }))
    .await;
    println!("[rush] {}", tally.summary("cancellations and reschedules"));
    check_against_tally(t, &tally).await?;
    Ok(tally)
}

pub async fn retries_with_the_same_key(t: &Target) -> anyhow::Result<Tally> {
    let offsets: Vec<i64> = (0..10).collect();
    let slots = t.days("janssen", "rush-centre", &offsets, 50).await;
    let tally = Tally::default();
    let references = join_all((0..CLIENTS).map(|i| {
        let (t, tally, slots) = (t, &tally, &slots);
        async move {
            let (name, birth) = person(i);
            let request = t.request(&slots[i % slots.len()], &name, "Retry", &birth, &format!("same-key-{i}"));
            // A flaky network: the same request three times at once.
            let answers = join_all((0..3).map(|_| attempt(t, tally, request.clone()))).await;
            let refs: Vec<String> = answers.into_iter().flatten().map(|b| b.reference).collect();
            refs
        }
    }))
    .await;
    println!("[rush] {}", tally.summary("retries with the same key"));
    for refs in &references {
        anyhow::ensure!(refs.windows(2).all(|w| w[0] == w[1]), "one key, one booking: {refs:?}");
    }
    let sold = Tally::get(&tally.confirmed);
    anyhow::ensure!(sold == 500, "500 places: {sold} sold");
    check_against_tally(t, &tally).await?;
    Ok(tally)
}

/// Every operation that changes a booking, at the same instant on the same
/// bookings: the citizen cancels and moves each dose, a retry replays the
/// booking, and staff cancel one day and move another. Then every place
/// left is sold: a place freed twice would sell beyond capacity.
pub async fn the_same_bookings_changed_at_once(t: &Target) -> anyhow::Result<Tally> {
    // Second-dose days with room to spare: a first-dose place left unsold
    // is then one no second dose could follow.
    let firsts = t.days("pfizer", "rush-centre", &(0..10).collect::<Vec<_>>(), 30).await;
    let seconds = t.days("pfizer", "rush-centre", &(22..32).collect::<Vec<_>>(), 90).await;
    let tally = Tally::default();
    let booked: Vec<(pb::BookRequest, pb::Booking)> = join_all((0..240).map(|i| {
        let (t, tally, firsts) = (t, &tally, &firsts);
        async move {
            let (name, birth) = person(i);
            let request = t.request(&firsts[i % firsts.len()], &name, "Same", &birth, &format!("s{i}"));
            attempt(t, tally, request.clone()).await.map(|booking| (request, booking))
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    anyhow::ensure!(booked.len() == 240, "room for everyone before the race: {} booked", booked.len());

    let (cancelled_by_staff, moved_by_staff) = (AtomicU64::new(0), AtomicU64::new(0));
    let day = |offset: i64| (Utc::now() + chrono::Duration::days(1 + offset)).date_naive().to_string();
    let sessions = (0..2).flat_map(|_| {
        [(day(0), None), (day(1), Some(day(9)))].map(|(date, move_to_date)| pb::CancelSessionRequest {
            centre_id: "rush-centre".into(),
            date,
            time_zone: "UTC".into(),
            reason: "livraison annulée".into(),
            move_to_date,
            ..Default::default()
        })
    });
    let staff = join_all(sessions.map(|request| {
        let (t, cancelled, moved) = (t, &cancelled_by_staff, &moved_by_staff);
        async move {
            let outcome = retry_through_back_pressure(|| {
                let mut client = t.client.clone();
                let request = request.clone();
                async move { client.cancel_session(request).await.map(|r| r.into_inner()) }
            })
            .await
            .expect("a session is cancelled or moved");
            cancelled.fetch_add(u64::from(outcome.cancelled), Relaxed);
            moved.fetch_add(u64::from(outcome.moved), Relaxed);
        }
    }));
    let citizens = join_all(booked.iter().flat_map(|(request, booking)| {
        let credentials = (booking.reference.clone(), booking.secret.clone().unwrap());
        let pick = |slots: &[String]| slots[rand::rng().random_range(0..slots.len())].clone();
        let operations: [Operation; 4] = [
            Operation::Cancel,
            Operation::Move { dose: 1, slot_id: pick(&firsts) },
            Operation::Move { dose: 2, slot_id: pick(&seconds) },
            Operation::Replay(Box::new(request.clone())),
        ];
        operations.map(|operation| {
            let (t, tally, credentials) = (t, &tally, credentials.clone());
            async move { operation.run(t, tally, credentials).await }
        })
    }));
    futures::join!(staff, citizens);

    // Everything left is sold, by people who move down the list of days.
    join_all((0..CLIENTS).map(|i| {
        let (t, tally, firsts) = (t, &tally, &firsts);
        async move {
            let (name, birth) = person(10_000 + i);
            for (n, slot) in firsts.iter().enumerate() {
                let request = t.request(slot, &name, "Late", &birth, &format!("fill{i}-{n}"));
                if attempt(t, tally, request).await.is_some() {
                    return;
                }
            }
            tally.gave_up.fetch_add(1, Relaxed);
        }
    }))
    .await;
    println!(
        "[rush] {}",
        tally.summary(&format!(
            "the same bookings changed at once (staff: {} cancelled, {} moved)",
            cancelled_by_staff.load(Relaxed),
            moved_by_staff.load(Relaxed)
        ))
    );
    check_invariants(t).await?;
    // Slot ids are ours (uuids): safe to inline.
    let first_days = firsts.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(", ");
    let open_with_room = t
        .scalar(&format!(
            "SELECT COUNT(*) FROM slots WHERE status = 'open' AND booked < capacity AND id IN ({first_days})"
        ))
        .await;
    anyhow::ensure!(open_with_room == 0, "every first-dose place left was sold: {open_with_room} slots with room");
    Ok(tally)
}

/// One change a citizen makes to their booking.
enum Operation {
    Cancel,
    Move { dose: u32, slot_id: String },
    Replay(Box<pb::BookRequest>),
}

impl Operation {
    async fn run(self, t: &Target, tally: &Tally, (reference, secret): (String, String)) {
        let answer = match self {
            Operation::Cancel => {
                let request = pb::CancelRequest { reference, secret };
                retry_through_back_pressure(|| {
                    let (mut client, request) = (t.client.clone(), request.clone());
                    async move { client.cancel(request).await.map(|r| r.into_inner()) }
                })
                .await
            }
            Operation::Move { dose, slot_id } => {
                let request = pb::RescheduleRequest { reference, secret, dose, slot_id, second_slot_id: None };
                retry_through_back_pressure(|| {
                    let (mut client, request) = (t.client.clone(), request.clone());
                    async move { client.reschedule(request).await.map(|r| r.into_inner()) }
                })
                .await
            }
            Operation::Replay(request) => {
                let booking = attempt(t, tally, *request).await.expect("a replay answers");
                assert!(booking.replayed && booking.reference == reference, "a retry replays: {booking:?}");
                return;
            }
        };
        tally.attempts.fetch_add(1, Relaxed);
        match answer {
            Ok(booking) if booking.status == "cancelled" => {
                tally.cancelled.fetch_add(1, Relaxed);
            }
            Ok(_) => {
                tally.moved.fetch_add(1, Relaxed);
            }
            // Refusals that leave the booking as it was: the slot is full
            // or closed, the booking was cancelled first, the second dose
            // would fall outside its interval.
            Err(status) if is_conflict(&status) || reason(&status) == r::VALIDATION => {
                tally.conflicts.fetch_add(1, Relaxed);
            }
            Err(status) => panic!("unexpected answer to a change: {status:?}"),
        }
    }
}
