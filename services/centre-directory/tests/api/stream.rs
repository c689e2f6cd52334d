//! The directory answers from memory fed by slot-inventory's availability
//! stream: searches need no call to slot-inventory, a restarted
//! slot-inventory gives a new snapshot, a replica started late catches up.

use std::time::Duration;

use creneau_proto::centre_directory::v1::{
    Centre, SearchCentresRequest, SearchCentresResponse, centre_directory_client::CentreDirectoryClient,
    search_centres_request::Near,
};
use creneau_proto::slot_inventory::v1::CloseSlotsRequest;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::helpers::{TestApp, centre};

fn near_metz() -> SearchCentresRequest {
    SearchCentresRequest { near: Some(Near::Postcode("57000".into())), radius_km: 30.0, ..Default::default() }
}

async fn search(client: &CentreDirectoryClient<Channel>) -> SearchCentresResponse {
    client.clone().search_centres(near_metz()).await.unwrap().into_inner()
}

fn places(found: &SearchCentresResponse, id: &str) -> Option<u32> {
    found.centres.iter().find(|c| c.id == id).map(|c| c.available_slots_7d)
}

/// Waits (up to 5 s) until `done` holds of a search on `client`.
async fn eventually(client: &CentreDirectoryClient<Channel>, done: impl Fn(&SearchCentresResponse) -> bool) {
    for _ in 0..250 {
        if done(&search(client).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not seen within 5 s: {:?}", search(client).await);
}

async fn availability_status(port: u16) -> i32 {
    let mut health = HealthClient::new(creneau_kit::testing::channel(port).await);
    health
        .check(HealthCheckRequest { service: creneau_centre_directory::AVAILABILITY.into() })
        .await
        .map_or(-1, |r| r.into_inner().status)
}

/// Whether the `availability` health status turns `wanted` within 4 s.
async fn availability_becomes(port: u16, wanted: ServingStatus) -> bool {
    for _ in 0..40 {
        if availability_status(port).await == wanted as i32 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn a_search_makes_no_call_to_slot_inventory_and_a_restart_brings_a_new_snapshot(mut app: TestApp) {
    app.upsert(centre("metz-arsenal", "57000", 49.1156, 6.1718, &["pfizer"])).await.unwrap();
    app.open_slots("metz-arsenal", 5, 3).await;
    app.open_slots("metz-arsenal", 6, 4).await;
    assert_eq!(places(&search(&app.client).await, "metz-arsenal"), Some(7));

    app.stop_slot_inventory();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // slot-inventory is gone: searches still answer from memory, and say
    // how old it is; past the bound, the directory reports it.
    for _ in 0..20 {
        let found = search(&app.client).await;
        assert_eq!(places(&found, "metz-arsenal"), Some(7));
        assert!(found.availability_as_of.is_some());
    }
    let got = app
        .client
        .clone()
        .get_centre(creneau_proto::centre_directory::v1::GetCentreRequest { id: "metz-arsenal".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.available_slots_7d, 7);
    assert!(
        availability_becomes(app.directory_port, ServingStatus::NotServing).await,
        "stale availability is reported"
    );
    let found = search(&app.client).await;
    let as_of = chrono::DateTime::parse_from_rfc3339(found.availability_as_of.as_deref().unwrap()).unwrap();
    assert!(chrono::Utc::now().signed_duration_since(as_of) > chrono::Duration::seconds(1));

    // Back: a new process, a new stream; the directory takes its snapshot,
    // which includes what changed meanwhile.
    app.restart_slot_inventory().await;
    app.open_slots("metz-arsenal", 7, 2).await;
    eventually(&app.client, |f| places(f, "metz-arsenal") == Some(9)).await;
    assert!(availability_becomes(app.directory_port, ServingStatus::Serving).await, "fresh again");
}

async fn a_replica_started_late_catches_up_and_follows_writes_made_elsewhere(mut app: TestApp) {
    app.upsert(centre("metz-arsenal", "57000", 49.1156, 6.1718, &["pfizer"])).await.unwrap();
    app.open_slots("metz-arsenal", 5, 3).await;
    let late = app.start_directory().await;
    assert_eq!(places(&search(&late).await, "metz-arsenal"), Some(3));

    // A centre written through the first replica shows on the late one.
    let expo: Centre = centre("metz-expo", "57070", 49.1088, 6.2226, &["pfizer"]);
    app.upsert(expo).await.unwrap();
    eventually(&late, |f| places(f, "metz-expo") == Some(0)).await;
    // Slots closed show on both.
    let listed = app
        .slots
        .clone()
        .list_slots(creneau_proto::slot_inventory::v1::ListSlotsRequest {
            centre_id: "metz-arsenal".into(),
            days: 7,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids = listed.slots.iter().map(|s| s.id.clone()).collect();
    app.slots.clone().close_slots(CloseSlotsRequest { slot_ids: ids }).await.unwrap();
    for client in [&app.client, &late] {
        eventually(client, |f| places(f, "metz-arsenal") == Some(0)).await;
    }
}

creneau_kit::backend_tests!(
    crate::helpers::spawn_app;
    a_search_makes_no_call_to_slot_inventory_and_a_restart_brings_a_new_snapshot,
    a_replica_started_late_catches_up_and_follows_writes_made_elsewhere,
);
