use chrono::{Duration, Utc};
use creneau_centre_directory::{Application, CentreDirectorySettings, Settings};
use creneau_kit::attestation::Signer;
use creneau_kit::testing::{Backend, TestDatabase};
use creneau_kit::{ServerSettings, TelemetrySettings};
use creneau_proto::centre_directory::v1::{
    Centre, UpsertCentreRequest, centre_directory_client::CentreDirectoryClient,
};
use creneau_proto::slot_inventory::v1::{CreateSlotsRequest, NewSlot, slot_inventory_client::SlotInventoryClient};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub struct TestApp {
    pub client: CentreDirectoryClient<Channel>,
    pub slots: SlotInventoryClient<Channel>,
    _database: TestDatabase,
    _stops: Vec<oneshot::Sender<()>>,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    creneau_kit::telemetry::init_for_tests();
    // Both services' tables in one test database: each still reads only its own.
    let (database, db) = TestDatabase::migrated(backend, "centre-directory").await?;
    creneau_migrations::up("slot-inventory", &db).await.unwrap();

    let slot_inventory = creneau_slot_inventory::Application::build(creneau_slot_inventory::Settings {
        server: ServerSettings::local(0),
        database: database.settings(),
        telemetry: TelemetrySettings::default(),
        slot_inventory: creneau_slot_inventory::SlotInventorySettings::new(
            Signer::parse(&Signer::generate_spec("k")).unwrap().public_spec(),
        ),
    })
    .await
    .unwrap();
    let slots_port = slot_inventory.port();
    let (stop_slots, stopped) = oneshot::channel::<()>();
    tokio::spawn(slot_inventory.run_until(async {
        let _ = stopped.await;
    }));

    let app = Application::build(Settings {
        server: ServerSettings::local(0),
        database: database.settings(),
        telemetry: TelemetrySettings::default(),
        centre_directory: CentreDirectorySettings { slot_inventory_url: format!("http://127.0.0.1:{slots_port}") },
    })
    .await
    .expect("app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Some(TestApp {
        client: CentreDirectoryClient::new(creneau_kit::testing::channel(port).await),
        slots: SlotInventoryClient::new(creneau_kit::testing::channel(slots_port).await),
        _database: database,
        _stops: vec![stop, stop_slots],
    })
}

pub fn centre(id: &str, postcode: &str, lat: f64, lon: f64, vaccines: &[&str]) -> Centre {
    Centre {
        id: id.into(),
        name: format!("Centre {id}"),
        address: "1 rue de la Gare".into(),
        postcode: postcode.into(),
        city: "Ville".into(),
        department: postcode[..2].into(),
        lat,
        lon,
        vaccines: vaccines.iter().map(|v| v.to_string()).collect(),
        accessible: true,
        phone: "03 87 00 00 00".into(),
        publish_at: "2021-01-18T07:00:00Z".into(),
        ..Default::default()
    }
}

impl TestApp {
    pub async fn upsert(&self, centre: Centre) -> Result<Centre, tonic::Status> {
        self.client.clone().upsert_centre(UpsertCentreRequest { centre: Some(centre) }).await.map(|r| r.into_inner())
    }

    pub async fn open_slots(&self, centre_id: &str, hours: i64, capacity: u32) {
        let start = Utc::now() + Duration::hours(hours);
        self.slots
            .clone()
            .create_slots(CreateSlotsRequest {
                centre_id: centre_id.into(),
                slots: vec![NewSlot {
                    vaccine: "pfizer".into(),
                    starts_at: start.to_rfc3339(),
                    ends_at: (start + Duration::minutes(15)).to_rfc3339(),
                    capacity,
                }],
            })
            .await
            .unwrap();
    }
}
