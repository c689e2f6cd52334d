use creneau_kit::attestation::Signer;
use creneau_kit::testing::{Backend, TestDatabase};
use creneau_kit::{ServerSettings, TelemetrySettings};
use creneau_proto::slot_inventory::v1::slot_inventory_client::SlotInventoryClient;
use creneau_slot_inventory::scenarios::Target;
use creneau_slot_inventory::{Application, Settings, SlotInventorySettings};
use tokio::sync::oneshot;

/// A slot-inventory on a fresh database; the scenarios' helpers (publish
/// slots, make requests, read the database) through `Deref`.
pub struct TestApp {
    target: Target,
    pub port: u16,
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
            notification_url,
            relay_interval_ms: 100,
            hold_ttl_secs: ttl_secs,
            idempotency_ttl_secs: if ttl_secs < 300 { ttl_secs } else { 86400 },
            // Quick to give up on a refused event, so tests see dead letters.
            relay_max_attempts: 3,
            relay_first_retry_ms: 100,
            ..SlotInventorySettings::new(signer.public_spec())
        },
    };
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Some(TestApp {
        target: Target {
            client: SlotInventoryClient::new(creneau_kit::testing::channel(port).await),
            db,
            signer: std::sync::Arc::new(signer),
        },
        port,
        backend,
        _database: database,
        _stop: stop,
    })
}

impl std::ops::Deref for TestApp {
    type Target = Target;

    fn deref(&self) -> &Target {
        &self.target
    }
}

impl TestApp {
    pub async fn booked(&self, slot_id: &str) -> i64 {
        self.scalar(&format!("SELECT booked FROM slots WHERE id = '{slot_id}'")).await
    }

    /// Publishes one single-dose (Janssen) slot starting `hours` from now;
    /// returns its id.
    pub async fn slot(&self, centre: &str, hours: i64, capacity: u32) -> String {
        self.slot_of("janssen", centre, hours, capacity).await
    }
}

pub use creneau_slot_inventory::scenarios::reason;
