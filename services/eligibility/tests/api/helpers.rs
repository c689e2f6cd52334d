use creneau_eligibility::{Application, EligibilitySettings, Settings};
use creneau_kit::attestation::Signer;
use creneau_kit::testing::{Backend, TestDatabase};
use creneau_kit::{ServerSettings, TelemetrySettings};
use creneau_proto::eligibility::v1::{CheckRequest, CheckResponse, eligibility_client::EligibilityClient};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub struct TestApp {
    pub client: EligibilityClient<Channel>,
    _database: TestDatabase,
    _stop: oneshot::Sender<()>,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    creneau_kit::telemetry::init_for_tests();
    let (database, _db) = TestDatabase::migrated(backend, "eligibility").await?;
    let (client, stop) = start(&database).await;
    Some(TestApp { client, _database: database, _stop: stop })
}

/// Two replicas of the service on one database.
pub struct Replicas {
    pub a: EligibilityClient<Channel>,
    pub b: EligibilityClient<Channel>,
    _database: TestDatabase,
    _stops: [oneshot::Sender<()>; 2],
}

pub async fn spawn_replicas(backend: Backend) -> Option<Replicas> {
    creneau_kit::telemetry::init_for_tests();
    let (database, _db) = TestDatabase::migrated(backend, "eligibility").await?;
    let (a, stop_a) = start(&database).await;
    let (b, stop_b) = start(&database).await;
    Some(Replicas { a, b, _database: database, _stops: [stop_a, stop_b] })
}

async fn start(database: &TestDatabase) -> (EligibilityClient<Channel>, oneshot::Sender<()>) {
    let settings = Settings {
        server: ServerSettings::local(0),
        database: database.settings(),
        telemetry: TelemetrySettings::default(),
        eligibility: EligibilitySettings {
            signing_key: Signer::generate_spec("test-key").into(),
            attestation_ttl_secs: 600,
            retired_verification_keys: String::new(),
            rules_refresh_ms: 200,
        },
    };
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    (EligibilityClient::new(creneau_kit::testing::channel(port).await), stop)
}

impl TestApp {
    pub async fn check(
        &self,
        birth_date: &str,
        conditions: &[&str],
        profession: Option<&str>,
        as_of: Option<&str>,
        language: &str,
    ) -> Result<CheckResponse, tonic::Status> {
        self.client
            .clone()
            .check(CheckRequest {
                birth_date: birth_date.into(),
                conditions: conditions.iter().map(|c| c.to_string()).collect(),
                profession: profession.map(Into::into),
                as_of: as_of.map(Into::into),
                language: language.into(),
                dose: None,
                last_dose_date: None,
            })
            .await
            .map(|r| r.into_inner())
    }
}
