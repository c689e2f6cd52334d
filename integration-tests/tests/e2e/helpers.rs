use std::path::PathBuf;
use std::time::Duration;

use chrono::{Duration as Span, Utc};
use creneau::{Databases, Platform, PlatformConfig};
use creneau_kit::testing::{Backend, TestDatabase};
use creneau_proto::centre_directory::v1::{
    Centre, UpsertCentreRequest, centre_directory_client::CentreDirectoryClient,
};
use creneau_proto::slot_inventory::v1::{CreateSlotsRequest, NewSlot, slot_inventory_client::SlotInventoryClient};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

pub struct TestPlatform {
    pub platform: Platform,
    pub http: reqwest::Client,
    pub db: DatabaseConnection,
    database: TestDatabase,
    pub maildir: PathBuf,
    _dir: tempfile::TempDir,
}

/// The whole platform on one fresh database of `backend`.
pub async fn spawn_platform(backend: Backend) -> Option<TestPlatform> {
    spawn_platform_with(backend, |_| {}).await
}

/// The whole platform, configured by `configure` first.
pub async fn spawn_platform_with(
    backend: Backend,
    configure: impl FnOnce(&mut PlatformConfig),
) -> Option<TestPlatform> {
    creneau_kit::telemetry::init_for_tests();
    let database = TestDatabase::new(backend).await?;
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let databases = match backend {
        Backend::Postgres => Databases::Shared(database.url()),
        Backend::Sqlite => Databases::SqliteDir(dir.path().join("db")),
    };
    let mut config = PlatformConfig::new(databases.clone(), maildir.clone());
    configure(&mut config);
    let platform = Platform::start(config).await.unwrap();
    let db = creneau_kit::db::connect(&databases.settings_for("slot-inventory")).await.unwrap();
    Some(TestPlatform {
        platform,
        http: reqwest::Client::builder().pool_max_idle_per_host(400).build().unwrap(),
        db,
        database,
        maildir,
        _dir: dir,
    })
}

impl TestPlatform {
    /// The database every service shares (PostgreSQL runs only).
    pub fn database_url(&self) -> String {
        self.database.url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.platform.gateway_url())
    }

    /// Publishes a centre near Metz with `slots` single-dose slots of
    /// `capacity`, one an hour from tomorrow on; returns the slot ids in
    /// time order.
    pub async fn centre_with_slots(&self, id: &str, slots: usize, capacity: u32) -> Vec<String> {
        self.centre_with(id, "janssen", &(0..slots as i64).map(Span::hours).collect::<Vec<_>>(), capacity).await
    }

    /// Publishes a centre near Metz offering `vaccine`, with one slot at
    /// each offset from tomorrow, same time; returns their ids in order.
    pub async fn centre_with(&self, id: &str, vaccine: &str, offsets: &[Span], capacity: u32) -> Vec<String> {
        let mut centres =
            CentreDirectoryClient::new(creneau_kit::testing::channel(self.platform.port("centre-directory")).await);
        centres
            .upsert_centre(UpsertCentreRequest {
                centre: Some(Centre {
                    id: id.into(),
                    name: format!("Centre de vaccination {id}"),
                    address: "3 avenue Ney".into(),
                    postcode: "57000".into(),
                    city: "Metz".into(),
                    department: "57".into(),
                    lat: 49.1156,
                    lon: 6.1718,
                    vaccines: vec![vaccine.into()],
                    accessible: true,
                    phone: "03 87 00 00 00".into(),
                    publish_at: "2021-01-18T07:00:00Z".into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
        let start = (Utc::now() + Span::days(1)).date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
        let mut inventory =
            SlotInventoryClient::new(creneau_kit::testing::channel(self.platform.port("slot-inventory")).await);
        let created = inventory
            .create_slots(CreateSlotsRequest {
                centre_id: id.into(),
                slots: offsets
                    .iter()
                    .map(|offset| NewSlot {
                        vaccine: vaccine.into(),
                        starts_at: (start + *offset).to_rfc3339(),
                        ends_at: (start + *offset + Span::minutes(15)).to_rfc3339(),
                        capacity,
                    })
                    .collect(),
            })
            .await
            .unwrap()
            .into_inner();
        settled(&mut centres).await;
        created.slots.into_iter().map(|s| s.id).collect()
    }

    pub async fn attestation(&self, birth_date: &str) -> String {
        self.attestation_for(birth_date, 1).await
    }

    pub async fn attestation_for(&self, birth_date: &str, dose: u32) -> String {
        let response = self
            .http
            .post(self.url("/api/v1/eligibility"))
            .json(&json!({
                "birth_date": birth_date,
                "conditions": [],
                "dose": dose,
                // Boosters count from the last dose: four months ago.
                "last_dose_date": (dose == 3).then(|| (Utc::now() - Span::days(120)).date_naive().to_string()),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["eligible"], true, "{body}");
        body["attestation"].as_str().unwrap().to_owned()
    }

    pub async fn book(&self, key: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url("/api/v1/bookings")).header("idempotency-key", key).json(body).send().await.unwrap()
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from)).unwrap()
    }

    /// Delivered messages, once at least `count` are there and nothing more
    /// arrives for a moment (so duplicates would be seen).
    pub async fn messages(&self, count: usize) -> Vec<String> {
        let new = self.maildir.join("new");
        for _ in 0..150 {
            if read_dir(&new).len() >= count {
                tokio::time::sleep(Duration::from_millis(700)).await;
                return read_dir(&new);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {count} messages, found {}", read_dir(&new).len());
    }

    pub fn messages_now(&self) -> Vec<String> {
        read_dir(&self.maildir.join("new"))
    }
}

fn read_dir(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
        .unwrap_or_default()
}

pub fn booking_body(slot_id: &str, attestation: &str, first: &str, last: &str, birth: &str) -> Value {
    json!({
        "slot_id": slot_id,
        "attestation": attestation,
        "citizen": {
            "first_name": first,
            "last_name": last,
            "birth_date": birth,
            "email": format!("{}.{}@example.fr", first.to_lowercase(), last.to_lowercase()),
            "phone": null
        }
    })
}

/// Waits until the directory's availability is as of a moment after now,
/// so that what was written before shows in searches.
pub async fn settled(centres: &mut CentreDirectoryClient<tonic::transport::Channel>) {
    use creneau_proto::centre_directory::v1::{SearchCentresRequest, search_centres_request::Near};
    let written = Utc::now();
    let probe = SearchCentresRequest { near: Some(Near::Department("99".into())), ..Default::default() };
    for _ in 0..500 {
        let found = centres.search_centres(probe.clone()).await.unwrap().into_inner();
        let as_of = found.availability_as_of.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if as_of.is_some_and(|t| t > written) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("availability did not catch up within 5 s");
}
