use chrono::{Duration, Utc};
use creneau_kit::attestation::Signer;
use creneau_kit::testing::{Backend, TestDatabase};
use creneau_kit::{ServerSettings, TelemetrySettings};
use creneau_proto::slot_inventory::v1::{self as pb, slot_inventory_client::SlotInventoryClient};
use creneau_slot_inventory::{Application, Settings, SlotInventorySettings};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub struct TestApp {
    pub client: SlotInventoryClient<Channel>,
    pub port: u16,
    pub db: DatabaseConnection,
    pub signer: Signer,
    pub backend: Backend,
    _database: TestDatabase,
    _stop: oneshot::Sender<()>,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, None).await
}

/// Holds and idempotency keys that expire after two seconds.
pub async fn spawn_short_lived(backend: Backend) -> Option<TestApp> {
    spawn(backend, None, 2).await
}

pub async fn spawn_app_with(backend: Backend, notification_url: Option<String>) -> Option<TestApp> {
    spawn(backend, notification_url, 300).await
}

async fn spawn(backend: Backend, notification_url: Option<String>, ttl_secs: u32) -> Option<TestApp> {
    creneau_kit::telemetry::init_for_tests();
    let (database, db) = TestDatabase::migrated(backend, "slot-inventory").await?;
    let signer = Signer::parse(&Signer::generate_spec("test")).unwrap();
    let settings = Settings {
        server: ServerSettings::local(0),
        database: database.settings(),
        telemetry: TelemetrySettings::default(),
        slot_inventory: SlotInventorySettings {
            verification_keys: signer.public_spec(),
            notification_url,
            relay_interval_ms: 100,
            hold_ttl_secs: ttl_secs,
            idempotency_ttl_secs: if ttl_secs < 300 { ttl_secs } else { 86400 },
            // Quick to give up on a refused event, so tests see dead letters.
            relay_max_attempts: 3,
            relay_first_retry_ms: 100,
        },
    };
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Some(TestApp {
        client: SlotInventoryClient::new(creneau_kit::testing::channel(port).await),
        port,
        db,
        signer,
        backend,
        _database: database,
        _stop: stop,
    })
}

impl TestApp {
    pub fn attestation(&self, birth_date: &str) -> String {
        self.attestation_for(birth_date, 1)
    }

    pub fn attestation_for(&self, birth_date: &str, dose: u32) -> String {
        self.signer.sign(birth_date.parse().unwrap(), dose, Utc::now(), Duration::minutes(30))
    }

    /// Publishes slots of `vaccine` at `centre`, one per offset in days from
    /// tomorrow 09:00 UTC; returns their ids in the same order.
    pub async fn days(&self, vaccine: &str, centre: &str, offsets: &[i64], capacity: u32) -> Vec<String> {
        let base = (Utc::now() + Duration::days(1)).date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
        let slots: Vec<pb::NewSlot> = offsets
            .iter()
            .map(|d| {
                let start = base + Duration::days(*d);
                pb::NewSlot {
                    vaccine: vaccine.into(),
                    starts_at: start.to_rfc3339(),
                    ends_at: (start + Duration::minutes(15)).to_rfc3339(),
                    capacity,
                }
            })
            .collect();
        let created = self
            .client
            .clone()
            .create_slots(pb::CreateSlotsRequest { centre_id: centre.into(), slots: slots.clone() })
            .await
            .unwrap()
            .into_inner();
        slots
            .iter()
            .map(|wanted| {
                let start = chrono::DateTime::parse_from_rfc3339(&wanted.starts_at).unwrap();
                let found =
                    created.slots.iter().find(|s| chrono::DateTime::parse_from_rfc3339(&s.starts_at).unwrap() == start);
                found.unwrap().id.clone()
            })
            .collect()
    }

    pub async fn booked(&self, slot_id: &str) -> i64 {
        self.scalar(&format!("SELECT booked FROM slots WHERE id = '{slot_id}'")).await
    }

    /// Publishes one single-dose (Janssen) slot starting `hours` from now;
    /// returns its id.
    pub async fn slot(&self, centre: &str, hours: i64, capacity: u32) -> String {
        self.slot_of("janssen", centre, hours, capacity).await
    }

    pub async fn slot_of(&self, vaccine: &str, centre: &str, hours: i64, capacity: u32) -> String {
        let start = Utc::now() + Duration::hours(hours);
        let created = self
            .client
            .clone()
            .create_slots(pb::CreateSlotsRequest {
                centre_id: centre.into(),
                slots: vec![pb::NewSlot {
                    vaccine: vaccine.into(),
                    starts_at: start.to_rfc3339(),
                    ends_at: (start + Duration::minutes(15)).to_rfc3339(),
                    capacity,
                }],
            })
            .await
            .expect("slot created")
            .into_inner();
        created.slots[0].id.clone()
    }

    pub fn request(&self, slot_id: &str, first: &str, last: &str, birth: &str, key: &str) -> pb::BookRequest {
        pb::BookRequest {
            slot_id: slot_id.into(),
            citizen: Some(pb::Citizen {
                first_name: first.into(),
                last_name: last.into(),
                birth_date: birth.into(),
                email: Some(format!("{}@example.fr", first.to_lowercase())),
                phone: None,
                language: "fr".into(),
            }),
            attestation: self.attestation(birth),
            idempotency_key: key.into(),
            ..Default::default()
        }
    }

    pub async fn book(&self, request: pb::BookRequest) -> Result<pb::Booking, tonic::Status> {
        self.client.clone().book(request).await.map(|r| r.into_inner())
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql.to_owned()))
            .await
            .expect("query runs")
            .expect("one row");
        // PostgreSQL types COUNT as int8 but a plain column as int4.
        row.try_get_by_index::<i64>(0).or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from)).expect("an integer")
    }
}

pub fn reason(status: &tonic::Status) -> String {
    creneau_kit::errors::reason_of(status).unwrap_or_default()
}
