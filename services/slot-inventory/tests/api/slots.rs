use chrono::{Duration, TimeZone, Utc};
use creneau_proto::slot_inventory::v1 as pb;
use tonic::Code;

use crate::helpers::TestApp;

async fn publishing_slots_twice_creates_nothing_new(app: TestApp) {
    let start = (Utc::now() + Duration::days(1)).date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
    let slots: Vec<pb::NewSlot> = (0..4)
        .map(|i| pb::NewSlot {
            vaccine: "pfizer".into(),
            starts_at: (start + Duration::minutes(15 * i)).to_rfc3339(),
            ends_at: (start + Duration::minutes(15 * (i + 1))).to_rfc3339(),
            capacity: 3,
        })
        .collect();
    let request = pb::CreateSlotsRequest { centre_id: "metz-1".into(), slots };
    let first = app.client.clone().create_slots(request.clone()).await.unwrap().into_inner();
    let second = app.client.clone().create_slots(request).await.unwrap().into_inner();
    assert_eq!(first.slots.len(), 4);
    assert_eq!(
        first.slots.iter().map(|s| &s.id).collect::<Vec<_>>(),
        second.slots.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM slots").await, 4);

    let listed = app
        .client
        .clone()
        .list_slots(pb::ListSlotsRequest {
            centre_id: "metz-1".into(),
            from: start.date_naive().to_string(),
            days: 1,
            available_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.slots.len(), 4);
    assert!(listed.slots.windows(2).all(|w| w[0].starts_at < w[1].starts_at));
    assert_eq!(listed.slots[0].capacity, 3);

    let other_day = app
        .client
        .clone()
        .list_slots(pb::ListSlotsRequest {
            centre_id: "metz-1".into(),
            from: (start + Duration::days(1)).date_naive().to_string(),
            days: 1,
            available_only: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other_day.slots.is_empty());
}

async fn bad_slots_and_windows_are_invalid_arguments(app: TestApp) {
    let start = Utc::now() + Duration::days(1);
    let bad = pb::CreateSlotsRequest {
        centre_id: "metz-1".into(),
        slots: vec![pb::NewSlot {
            vaccine: "sputnik".into(),
            starts_at: start.to_rfc3339(),
            ends_at: (start + Duration::minutes(15)).to_rfc3339(),
            capacity: 1,
        }],
    };
    let err = app.client.clone().create_slots(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("sputnik"));

    let err = app
        .client
        .clone()
        .list_slots(pb::ListSlotsRequest {
            centre_id: "metz-1".into(),
            from: "26/11/2026".into(),
            days: 7,
            available_only: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn availability_counts_places_left_per_centre(app: TestApp) {
    let a = app.slot("centre-a", 2, 3).await;
    app.slot("centre-a", 5, 2).await;
    let full = app.slot("centre-b", 1, 1).await;
    app.slot("centre-b", 30 * 24, 4).await; // beyond the 7-day window
    app.book(app.request(&a, "Anne", "Martin", "1940-01-01", "k1")).await.unwrap();
    app.book(app.request(&full, "Paul", "Durand", "1941-01-01", "k2")).await.unwrap();

    let summary = app
        .client
        .clone()
        .availability_summary(pb::AvailabilitySummaryRequest {
            centre_ids: vec!["centre-a".into(), "centre-b".into(), "centre-c".into()],
            from: None,
            days: 7,
            vaccine: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let a = summary.centres.iter().find(|c| c.centre_id == "centre-a").unwrap();
    assert_eq!(a.available_slots, 4);
    assert!(a.next_slot.is_some());
    // centre-b's only slot this week is full, centre-c has none.
    assert!(summary.centres.iter().all(|c| c.centre_id == "centre-a"));
}

async fn availability_by_time_of_day_and_dose(app: TestApp) {
    let tomorrow = (Utc::now() + Duration::days(1)).date_naive();
    let at = |hour: u32| tomorrow.and_hms_opt(hour, 0, 0).unwrap().and_utc();
    // 08:00 and 19:00 in Paris (UTC+1 in winter, +2 in summer): morning, evening.
    let (morning, evening) =
        if chrono_tz::Europe::Paris.offset_from_utc_datetime(&at(7).naive_utc()).to_string() == "CET" {
            (at(7), at(18))
        } else {
            (at(6), at(17))
        };
    let slot = |vaccine: &str, start: chrono::DateTime<Utc>| pb::NewSlot {
        vaccine: vaccine.into(),
        starts_at: start.to_rfc3339(),
        ends_at: (start + Duration::minutes(15)).to_rfc3339(),
        capacity: 2,
    };
    app.client
        .clone()
        .create_slots(pb::CreateSlotsRequest {
            centre_id: "c".into(),
            slots: vec![slot("pfizer", morning), slot("janssen", evening)],
        })
        .await
        .unwrap();
    let places = |time_of_day: Option<&str>, dose: Option<&str>| {
        let mut client = app.client.clone();
        let request = pb::AvailabilitySummaryRequest {
            centre_ids: vec!["c".into()],
            days: 7,
            time_of_day: time_of_day.map(Into::into),
            dose: dose.map(Into::into),
            ..Default::default()
        };
        async move {
            let found = client.availability_summary(request).await.unwrap().into_inner().centres;
            found.first().map_or(0, |c| c.available_slots)
        }
    };
    assert_eq!(places(None, None).await, 4);
    assert_eq!(places(Some("morning"), None).await, 2);
    assert_eq!(places(Some("evening"), None).await, 2);
    assert_eq!(places(Some("afternoon"), None).await, 0);
    assert_eq!(places(None, Some("second")).await, 2, "only the two-dose vaccine gives second doses");
    assert_eq!(places(None, Some("booster")).await, 4);
    assert_eq!(places(Some("evening"), Some("second")).await, 0);
    let bad = app
        .client
        .clone()
        .availability_summary(pb::AvailabilitySummaryRequest {
            centre_ids: vec!["c".into()],
            time_of_day: Some("night".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    availability_by_time_of_day_and_dose,
    publishing_slots_twice_creates_nothing_new,
    bad_slots_and_windows_are_invalid_arguments,
    availability_counts_places_left_per_centre,
);
