use chrono::{Duration, Utc};
use creneau_centre_directory::{Application, CentreDirectorySettings, Settings};
use creneau_kit::attestation::Signer;
use creneau_kit::testing::{Backend, TestDatabase};
use creneau_kit::{ServerSettings, TelemetrySettings};
use creneau_proto::centre_directory::v1::{
    Centre, SearchCentresRequest, UpsertCentreRequest, centre_directory_client::CentreDirectoryClient,
    search_centres_request::Near,
};
use creneau_proto::slot_inventory::v1::{CreateSlotsRequest, NewSlot, slot_inventory_client::SlotInventoryClient};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub struct TestApp {
    pub client: CentreDirectoryClient<Channel>,
    pub directory_port: u16,
    pub slots: SlotInventoryClient<Channel>,
    pub slots_port: u16,
    database: TestDatabase,
    signer_spec: String,
    stop_slots: Option<oneshot::Sender<()>>,
    directories: Vec<oneshot::Sender<()>>,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    creneau_kit::telemetry::init_for_tests();
    // Both services' tables in one test database: each still reads only its own.
    let (database, db) = TestDatabase::migrated(backend, "centre-directory").await?;
    creneau_migrations::up("slot-inventory", &db).await.unwrap();
    let signer_spec = Signer::parse(&Signer::generate_spec("k")).unwrap().public_spec();
    let (slots_port, stop_slots) = start_slot_inventory(&database, &signer_spec, 0).await;
    let (client, directory_port, stop) = start_directory(&database, slots_port).await;
    Some(TestApp {
        client,
        directory_port,
        slots: SlotInventoryClient::new(creneau_kit::testing::channel(slots_port).await),
        slots_port,
        database,
        signer_spec,
        stop_slots: Some(stop_slots),
        directories: vec![stop],
    })
}

/// Starts a centre-directory replica (availability reported stale after a
/// second), and waits until it is ready.
async fn start_directory(
    database: &TestDatabase,
    slots_port: u16,
) -> (CentreDirectoryClient<Channel>, u16, oneshot::Sender<()>) {
    let app = Application::build(Settings {
        server: ServerSettings::local(0),
        database: database.settings(),
        telemetry: TelemetrySettings::default(),
        centre_directory: CentreDirectorySettings {
            availability_stale_after_ms: 1000,
            ..CentreDirectorySettings::new(format!("http://127.0.0.1:{slots_port}"))
        },
    })
    .await
    .expect("app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    creneau_kit::client::wait_until_serving(&format!("http://127.0.0.1:{port}"), std::time::Duration::from_secs(30))
        .await
        .unwrap();
    (CentreDirectoryClient::new(creneau_kit::testing::channel(port).await), port, stop)
}

async fn start_slot_inventory(database: &TestDatabase, signer_spec: &str, port: u16) -> (u16, oneshot::Sender<()>) {
    let slot_inventory = creneau_slot_inventory::Application::build(creneau_slot_inventory::Settings {
        server: ServerSettings::local(port),
        database: database.settings(),
        telemetry: TelemetrySettings::default(),
        slot_inventory: creneau_slot_inventory::SlotInventorySettings::new(signer_spec.to_owned()),
    })
    .await
    .unwrap();
    let port = slot_inventory.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(slot_inventory.run_until(async {
        let _ = stopped.await;
    }));
    (port, stop)
}

impl TestApp {
    /// Another centre-directory replica on the same database.
    pub async fn start_directory(&mut self) -> CentreDirectoryClient<Channel> {
        let (client, _, stop) = start_directory(&self.database, self.slots_port).await;
        self.directories.push(stop);
        client
    }

    pub fn stop_slot_inventory(&mut self) {
        if let Some(stop) = self.stop_slots.take() {
            let _ = stop.send(());
        }
    }

    /// Starts slot-inventory again on its port (a new process: a new stream).
    pub async fn restart_slot_inventory(&mut self) {
        let (_, stop) = start_slot_inventory(&self.database, &self.signer_spec, self.slots_port).await;
        self.stop_slots = Some(stop);
    }
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
        self.settle().await;
    }

    /// Waits until the directory's availability is as of a moment after
    /// now: what was written before is in it.
    pub async fn settle(&self) {
        let written = Utc::now();
        let probe = SearchCentresRequest { near: Some(Near::Department("99".into())), ..Default::default() };
        for _ in 0..500 {
            let found = self.client.clone().search_centres(probe.clone()).await.unwrap().into_inner();
            let as_of = found.availability_as_of.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            if as_of.is_some_and(|t| t > written) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("availability did not catch up within 5 s");
    }
}
