//! The availability stream: a snapshot, then the centres whose
//! availability changed, numbered; a subscriber resumes where it stopped,
//! or gets a new snapshot when the stream is not the one it knew.

use std::collections::HashMap;
use std::time::Duration;

use creneau_proto::slot_inventory::v1::{
    self as pb, AvailabilityUpdate, WatchAvailabilityRequest, availability_update::Kind,
};
use tonic::Streaming;

use crate::helpers::TestApp;

/// Subscribes, once the server has loaded availability (UNAVAILABLE until then).
async fn watch(app: &TestApp, epoch: &str, after: u64) -> Streaming<AvailabilityUpdate> {
    for _ in 0..300 {
        let request = WatchAvailabilityRequest { epoch: epoch.into(), after };
        match app.client.clone().watch_availability(request).await {
            Ok(stream) => return stream.into_inner(),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{status}"),
        }
    }
    panic!("availability not loaded within 15 s")
}

/// The next update that is not a heartbeat.
async fn next_change(stream: &mut Streaming<AvailabilityUpdate>) -> AvailabilityUpdate {
    loop {
        let update = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("an update within 5 s")
            .unwrap()
            .expect("the stream goes on");
        if update.kind != Kind::Heartbeat as i32 {
            return update;
        }
    }
}

fn places(centres: &[pb::CentreDays]) -> HashMap<String, u32> {
    centres.iter().map(|c| (c.centre_id.clone(), c.days.iter().map(|d| d.places_left).sum())).collect()
}

/// Reads a whole snapshot: its sequence and the places per centre.
async fn snapshot(stream: &mut Streaming<AvailabilityUpdate>) -> (AvailabilityUpdate, HashMap<String, u32>) {
    let begin = next_change(stream).await;
    assert_eq!(begin.kind, Kind::SnapshotBegin as i32);
    let mut all = HashMap::new();
    loop {
        let update = next_change(stream).await;
        if update.kind == Kind::SnapshotEnd as i32 {
            return (begin, all);
        }
        assert_eq!(update.kind, Kind::SnapshotPart as i32);
        all.extend(places(&update.centres));
    }
}

/// Applies changes until the state is `expected`; returns the last sequence.
async fn converge(
    stream: &mut Streaming<AvailabilityUpdate>,
    state: &mut HashMap<String, u32>,
    mut sequence: u64,
    expected: &HashMap<String, u32>,
) -> u64 {
    while state != expected {
        let delta = next_change(stream).await;
        assert_eq!((delta.kind, delta.sequence), (Kind::Delta as i32, sequence + 1), "numbered one by one");
        sequence = delta.sequence;
        for centre in &delta.centres {
            match centre.days.iter().map(|d| d.places_left).sum::<u32>() {
                0 => state.remove(&centre.centre_id),
                n => state.insert(centre.centre_id.clone(), n),
            };
        }
    }
    sequence
}

async fn a_snapshot_then_numbered_changes_and_a_resume(app: TestApp) {
    let metz = app.slot("metz", 30, 2).await;
    app.slot("nancy", 40, 5).await;
    // A slot that has started is not availability.
    app.slot("past", -1, 5).await;
    let mut stream = watch(&app, "", 0).await;
    // Slots published in the last tenth of a second come after the snapshot.
    let (begin, mut all) = snapshot(&mut stream).await;
    let expected = HashMap::from([("metz".to_owned(), 2), ("nancy".to_owned(), 5)]);
    let sequence = converge(&mut stream, &mut all, begin.sequence, &expected).await;
    let janssen = begin.vaccines.iter().find(|v| v.vaccine == "janssen").expect("vaccines come with the snapshot");
    assert!(!janssen.second);

    app.book(app.request(&metz, "Ada", "Lovelace", "1940-01-01", "k1")).await.unwrap();
    let delta = next_change(&mut stream).await;
    assert_eq!(delta.kind, Kind::Delta as i32);
    assert_eq!(delta.sequence, sequence + 1);
    assert_eq!(places(&delta.centres), HashMap::from([("metz".to_owned(), 1)]));
    let day = &delta.centres[0].days[0];
    assert_eq!(day.vaccine, "janssen");
    assert!(day.next_slot > chrono::Utc::now().timestamp());

    // Resuming just before the booking replays it, with no snapshot.
    let mut resumed = watch(&app, &begin.epoch, sequence).await;
    let replayed = next_change(&mut resumed).await;
    assert_eq!((replayed.kind, replayed.sequence), (Kind::Delta as i32, delta.sequence));
    // Another stream's position: a new snapshot.
    let mut elsewhere = watch(&app, "another-stream", delta.sequence).await;
    let (_, all) = snapshot(&mut elsewhere).await;
    assert_eq!(all["metz"], 1);

    // The last place taken: the centre has no availability left.
    app.book(app.request(&metz, "Grace", "Hopper", "1941-02-02", "k2")).await.unwrap();
    for s in [&mut stream, &mut resumed, &mut elsewhere] {
        let emptied = next_change(s).await;
        assert_eq!(emptied.sequence, delta.sequence + 1);
        assert_eq!(emptied.centres.len(), 1);
        assert!(emptied.centres[0].days.is_empty());
    }
}

creneau_kit::backend_tests!(crate::helpers::spawn_app; a_snapshot_then_numbered_changes_and_a_resume);
