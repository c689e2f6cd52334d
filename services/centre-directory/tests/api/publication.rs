//! A centre appears at its publication time exactly, and disappears at its
//! closing time, with no job to run.

use std::time::Duration;

use chrono::{DurationRound, Utc};
use creneau_proto::centre_directory::v1::{GetCentreRequest, SearchCentresRequest, search_centres_request::Near};

use crate::helpers::{TestApp, centre};

async fn visible(app: &TestApp, id: &str) -> (bool, bool) {
    let in_search = app
        .client
        .clone()
        .search_centres(SearchCentresRequest {
            near: Some(Near::Postcode("57000".into())),
            radius_km: 10.0,
            vaccine: None,
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .centres
        .iter()
        .any(|c| c.id == id);
    let by_id = app.client.clone().get_centre(GetCentreRequest { id: id.into() }).await.is_ok();
    (in_search, by_id)
}

async fn sleep_until(at: chrono::DateTime<Utc>) {
    let wait = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
}

async fn invisible_a_second_before_publication_visible_at_it(app: TestApp) {
    // T: the next whole second, two seconds from now.
    let t = (Utc::now() + chrono::Duration::seconds(2)).duration_trunc(chrono::Duration::seconds(1)).unwrap();
    let mut c = centre("metz-opening", "57000", 49.1156, 6.1718, &["pfizer"]);
    c.publish_at = t.to_rfc3339();
    c.closes_at = Some((t + chrono::Duration::seconds(2)).to_rfc3339());
    app.upsert(c).await.unwrap();

    sleep_until(t - chrono::Duration::seconds(1)).await;
    assert_eq!(visible(&app, "metz-opening").await, (false, false), "T − 1 s");
    sleep_until(t).await;
    assert_eq!(visible(&app, "metz-opening").await, (true, true), "T");
    sleep_until(t + chrono::Duration::seconds(1)).await;
    assert_eq!(visible(&app, "metz-opening").await, (true, true), "a second before closing");
    sleep_until(t + chrono::Duration::seconds(2)).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(visible(&app, "metz-opening").await, (false, false), "closed");
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    invisible_a_second_before_publication_visible_at_it,
);
