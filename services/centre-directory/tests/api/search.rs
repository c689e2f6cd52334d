use chrono::{Duration, Utc};
use creneau_proto::centre_directory::v1::{
    Coordinates, GetCentreRequest, SearchCentresRequest, search_centres_request::Near,
};
use tonic::Code;

use crate::helpers::{TestApp, centre};

fn by_postcode(code: &str, radius_km: f64, vaccine: Option<&str>) -> SearchCentresRequest {
    SearchCentresRequest {
        near: Some(Near::Postcode(code.into())),
        radius_km,
        vaccine: vaccine.map(Into::into),
        limit: 0,
        ..Default::default()
    }
}

async fn search_by_postcode_is_sorted_by_distance_and_shows_availability(app: TestApp) {
    app.upsert(centre("metz-expo", "57070", 49.1088, 6.2226, &["pfizer", "moderna"])).await.unwrap();
    app.upsert(centre("metz-arsenal", "57000", 49.1156, 6.1718, &["pfizer"])).await.unwrap();
    app.upsert(centre("thionville", "57100", 49.3579, 6.1683, &["moderna"])).await.unwrap();
    app.upsert(centre("nancy", "54000", 48.6921, 6.1844, &["pfizer"])).await.unwrap();
    app.open_slots("metz-arsenal", 3, 2).await;
    app.open_slots("metz-arsenal", 5, 3).await;

    let found = app.client.clone().search_centres(by_postcode("57000", 30.0, None)).await.unwrap().into_inner();
    let ids: Vec<&str> = found.centres.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["metz-arsenal", "metz-expo", "thionville"], "Nancy is ~47 km away");
    assert!(found.centres.windows(2).all(|w| w[0].distance_km <= w[1].distance_km));
    let arsenal = &found.centres[0];
    assert_eq!(arsenal.available_slots_7d, 5);
    assert!(arsenal.next_slot.is_some());
    assert_eq!(found.centres[1].available_slots_7d, 0);
    assert!(found.centres[1].next_slot.is_none());

    let moderna = app.client.clone().search_centres(by_postcode("57000", 30.0, Some("moderna"))).await.unwrap();
    let ids: Vec<String> = moderna.into_inner().centres.into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["metz-expo", "thionville"]);

    let wide = app.client.clone().search_centres(by_postcode("57000", 60.0, None)).await.unwrap().into_inner();
    assert_eq!(wide.centres.len(), 4);

    let near_nancy = SearchCentresRequest {
        near: Some(Near::Coordinates(Coordinates { lat: 48.69, lon: 6.18 })),
        radius_km: 5.0,
        vaccine: None,
        limit: 10,
        ..Default::default()
    };
    let found = app.client.clone().search_centres(near_nancy).await.unwrap().into_inner();
    assert_eq!(found.centres.len(), 1);
    assert_eq!(found.centres[0].id, "nancy");
}

async fn unpublished_centres_are_invisible(app: TestApp) {
    let mut later = centre("metz-later", "57000", 49.1156, 6.1718, &["pfizer"]);
    later.publish_at = (Utc::now() + Duration::hours(1)).to_rfc3339();
    app.upsert(later).await.unwrap();
    let found = app.client.clone().search_centres(by_postcode("57000", 10.0, None)).await.unwrap().into_inner();
    assert!(found.centres.is_empty());
    let err = app.client.clone().get_centre(GetCentreRequest { id: "metz-later".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let mut now_published = centre("metz-later", "57000", 49.1156, 6.1718, &["pfizer"]);
    now_published.publish_at = (Utc::now() - Duration::seconds(1)).to_rfc3339();
    app.upsert(now_published).await.unwrap();
    let got = app.client.clone().get_centre(GetCentreRequest { id: "metz-later".into() }).await.unwrap().into_inner();
    assert_eq!(got.name, "Centre metz-later");
    assert_eq!(got.vaccines, ["pfizer"]);
}

async fn bad_searches_and_centres_are_invalid_arguments(app: TestApp) {
    let mut client = app.client.clone();
    let unknown = client.search_centres(by_postcode("99999", 10.0, None)).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(unknown.message().contains("unknown postcode"));
    for request in [
        by_postcode("57", 10.0, None),
        by_postcode("57000", 1000.0, None),
        by_postcode("57000", 10.0, Some("sputnik")),
        SearchCentresRequest { near: None, radius_km: 10.0, vaccine: None, limit: 1, ..Default::default() },
        SearchCentresRequest {
            near: Some(Near::Coordinates(Coordinates { lat: 123.0, lon: 0.0 })),
            radius_km: 10.0,
            vaccine: None,
            limit: 1,
            ..Default::default()
        },
    ] {
        assert_eq!(client.search_centres(request).await.unwrap_err().code(), Code::InvalidArgument);
    }
    for bad in [
        centre("Bad Id", "57000", 49.0, 6.0, &["pfizer"]),
        centre("ok", "57000", 95.0, 6.0, &["pfizer"]),
        centre("ok", "57000", 49.0, 6.0, &[]),
        centre("ok", "57000", 49.0, 6.0, &["sputnik"]),
    ] {
        assert_eq!(app.upsert(bad).await.unwrap_err().code(), Code::InvalidArgument);
    }
}

async fn upserting_again_updates_in_place(app: TestApp) {
    app.upsert(centre("metz-1", "57000", 49.1156, 6.1718, &["pfizer"])).await.unwrap();
    let mut renamed = centre("metz-1", "57000", 49.1156, 6.1718, &["moderna"]);
    renamed.name = "Nouveau nom".into();
    app.upsert(renamed).await.unwrap();
    let found = app.client.clone().search_centres(by_postcode("57000", 5.0, None)).await.unwrap().into_inner();
    assert_eq!(found.centres.len(), 1);
    assert_eq!(found.centres[0].name, "Nouveau nom");
    assert_eq!(found.centres[0].vaccines, ["moderna"]);
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    search_by_postcode_is_sorted_by_distance_and_shows_availability,
    unpublished_centres_are_invisible,
    bad_searches_and_centres_are_invalid_arguments,
    upserting_again_updates_in_place,
);

fn request(near: Near) -> SearchCentresRequest {
    SearchCentresRequest { near: Some(near), radius_km: 30.0, limit: 10, ..Default::default() }
}

async fn ids(app: &TestApp, request: SearchCentresRequest) -> (Vec<String>, u32) {
    let found = app.client.clone().search_centres(request).await.unwrap().into_inner();
    (found.centres.into_iter().map(|c| c.id).collect(), found.total)
}

async fn search_by_commune_department_with_filters_sorting_and_pages(app: TestApp) {
    let mut expo = centre("metz-expo", "57070", 49.1088, 6.2226, &["pfizer"]);
    expo.accessible = false;
    app.upsert(expo).await.unwrap();
    app.upsert(centre("metz-arsenal", "57000", 49.1156, 6.1718, &["pfizer"])).await.unwrap();
    app.upsert(centre("thionville", "57100", 49.3579, 6.1683, &["pfizer"])).await.unwrap();
    app.upsert(centre("nancy", "54000", 48.6921, 6.1844, &["pfizer"])).await.unwrap();
    // Thionville has the earliest slot, Metz-Expo a later one.
    app.open_slots("thionville", 2, 1).await;
    app.open_slots("metz-expo", 30, 1).await;

    let by_name = ids(&app, request(Near::Commune("metz".into()))).await;
    let by_insee = ids(&app, request(Near::Commune("57463".into()))).await;
    assert_eq!(by_name, by_insee);
    assert_eq!(by_name.0, ["metz-arsenal", "metz-expo", "thionville"]);
    let unknown = app.client.clone().search_centres(request(Near::Commune("Atlantis".into()))).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);

    let department = ids(&app, request(Near::Department("57".into()))).await;
    assert_eq!(department, (vec!["metz-arsenal".to_string(), "metz-expo".into(), "thionville".into()], 3), "by name");

    let mut accessible = request(Near::Commune("Metz".into()));
    accessible.accessible = Some(true);
    assert_eq!(ids(&app, accessible).await.0, ["metz-arsenal", "thionville"]);

    let mut earliest = request(Near::Department("57".into()));
    earliest.sort = "earliest".into();
    assert_eq!(ids(&app, earliest).await.0, ["thionville", "metz-expo", "metz-arsenal"]);

    let mut page = request(Near::Department("57".into()));
    page.limit = 2;
    page.page = 2;
    assert_eq!(ids(&app, page).await, (vec!["thionville".to_string()], 3));

    // A window that ends before Metz-Expo's slot leaves it nothing.
    let mut window = request(Near::Commune("Metz".into()));
    let today = chrono::Utc::now().date_naive();
    window.from = Some(today.to_string());
    window.to = Some(today.to_string());
    let found = app.client.clone().search_centres(window).await.unwrap().into_inner();
    let expo = found.centres.iter().find(|c| c.id == "metz-expo").unwrap();
    if (chrono::Utc::now() + chrono::Duration::hours(30)).date_naive() > today {
        assert_eq!(expo.available_slots_7d, 0);
    }
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    search_by_commune_department_with_filters_sorting_and_pages,
);
