use std::path::PathBuf;
use std::time::Duration;

use creneau_kit::testing::{Backend, TestDatabase};
use creneau_kit::{ServerSettings, TelemetrySettings};
use creneau_notification::{Application, NotificationSettings, Settings};
use creneau_proto::notification::v1::notification_client::NotificationClient;
use creneau_proto::notification::v1::{AppointmentInfo, BookingConfirmed, Event, Recipient, event::Kind};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub struct TestApp {
    pub client: NotificationClient<Channel>,
    pub port: u16,
    pub db: sea_orm::DatabaseConnection,
    pub maildir: PathBuf,
    _dir: tempfile::TempDir,
    _database: TestDatabase,
    _stop: oneshot::Sender<()>,
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    creneau_kit::telemetry::init_for_tests();
    let (database, db) = TestDatabase::migrated(backend, "notification").await?;
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let settings = Settings {
        server: ServerSettings::local(0),
        database: database.settings(),
        telemetry: TelemetrySettings::default(),
        notification: NotificationSettings {
            maildir: maildir.display().to_string(),
            from: "Créneau <test@creneau.invalid>".into(),
            centre_directory_url: None,
            dispatch_interval_ms: 50,
            // Quick to give up, so tests see dead letters.
            max_attempts: 3,
            first_retry_ms: 100,
        },
    };
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Some(TestApp {
        client: NotificationClient::new(creneau_kit::testing::channel(port).await),
        port,
        db,
        maildir,
        _dir: dir,
        _database: database,
        _stop: stop,
    })
}

pub fn confirmation(id: &str, language: &str) -> Event {
    Event {
        id: id.into(),
        occurred_at: "2026-11-26T08:00:00Z".into(),
        traceparent: String::new(),
        kind: Some(Kind::BookingConfirmed(BookingConfirmed {
            reference: "ABCD-EFGH".into(),
            secret: "the-secret".into(),
            recipient: Some(Recipient {
                first_name: "Anne".into(),
                last_name: "Martin".into(),
                email: Some("anne@example.fr".into()),
                phone: None,
                language: language.into(),
            }),
            appointments: vec![AppointmentInfo {
                dose: 1,
                centre_id: "metz-1".into(),
                vaccine: "pfizer".into(),
                starts_at: "2026-12-01T08:15:00Z".into(),
                ends_at: "2026-12-01T08:30:00Z".into(),
            }],
        })),
    }
}

impl TestApp {
    /// The delivered messages, once `count` of them are there (and a
    /// little longer, so a duplicate would have time to show up).
    pub async fn delivered(&self, count: usize) -> Vec<String> {
        let new = self.maildir.join("new");
        for _ in 0..100 {
            let files = read_all(&new);
            if files.len() >= count {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return read_all(&new);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {count} messages in {}", new.display());
    }
}

fn read_all(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
}
