//! Places per département, as the waiting room reads them.

use chrono::{Duration, Utc};
use creneau_proto::centre_directory::v1::{DepartmentPlaces, DepartmentPlacesRequest};

use crate::helpers::{TestApp, centre};

async fn places(app: &TestApp) -> Vec<DepartmentPlaces> {
    app.client.clone().department_places(DepartmentPlacesRequest {}).await.unwrap().into_inner().departments
}

async fn places_follow_bookable_slots_and_publications(app: TestApp) {
    app.upsert(centre("metz", "57000", 49.1156, 6.1718, &["pfizer"])).await.unwrap();
    app.upsert(centre("thionville", "57100", 49.3579, 6.1683, &["pfizer"])).await.unwrap();
    let mut nancy = centre("nancy", "54000", 48.6921, 6.1844, &["pfizer"]);
    let opens = Utc::now() + Duration::days(2);
    nancy.publish_at = opens.to_rfc3339();
    app.upsert(nancy).await.unwrap();
    app.open_slots("metz", 3, 2).await;
    app.open_slots("thionville", 30, 4).await;
    app.open_slots("nancy", 60, 9).await;

    let found = places(&app).await;
    let codes: Vec<&str> = found.iter().map(|d| d.department.as_str()).collect();
    assert_eq!(codes, ["54", "57"]);
    let (nancy, moselle) = (&found[0], &found[1]);
    assert_eq!((nancy.places_left, nancy.next_slot.as_deref()), (0, None), "not published yet");
    let next_publication = chrono::DateTime::parse_from_rfc3339(nancy.next_publication.as_deref().unwrap()).unwrap();
    assert_eq!(next_publication.timestamp(), opens.timestamp());
    assert_eq!(moselle.places_left, 6);
    assert!(moselle.next_slot.is_some() && moselle.next_publication.is_none());
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    places_follow_bookable_slots_and_publications,
);
