//! Building and running the notification server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use creneau_kit::server::GrpcServer;
use creneau_proto::centre_directory::v1::centre_directory_client::CentreDirectoryClient;
use creneau_proto::notification::v1::{FILE_DESCRIPTOR_SET, notification_server::NotificationServer};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use crate::dispatcher::Dispatcher;
use crate::grpc::NotificationService;
use crate::maildir::Maildir;
use crate::settings::Settings;

pub const SERVICE: &str = "notification";

pub struct Application {
    server: GrpcServer,
    dispatcher: Dispatcher,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&settings.database).await.context("connecting to the database")?;
        Self::build_with(settings, db).await
    }

    pub async fn build_with(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let s = &settings.notification;
        let channel =
            Maildir::open(&s.maildir, &s.from).await.with_context(|| format!("opening maildir {}", s.maildir))?;
        let centres = s
            .centre_directory_url
            .as_deref()
            .map(creneau_kit::client::channel)
            .transpose()?
            .map(CentreDirectoryClient::new);
        let wakeup = Arc::new(Notify::new());
        let service = NotificationService::new(db.clone(), centres, wakeup.clone());
        let server = GrpcServer::bind(&settings.server)
            .await
            .with_context(|| format!("binding {}", settings.server.address()))?
            .add_service(NotificationServer::new(service))
            .add_service(creneau_kit::operations::DeadLettersService::new(db.clone(), crate::storage::QUEUE))
            .with_reflection([FILE_DESCRIPTOR_SET, creneau_proto::operations::v1::FILE_DESCRIPTOR_SET])
            .with_readiness(creneau_kit::db::readiness(&settings.database, SERVICE));
        let dispatcher = Dispatcher {
            db,
            channel,
            wakeup,
            interval: Duration::from_millis(s.dispatch_interval_ms),
            retries: s.retries(),
        };
        Ok(Self { server, dispatcher })
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(creneau_kit::shutdown::signal()).await
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let dispatcher = tokio::spawn(self.dispatcher.run());
        let result = self.server.serve(shutdown).await;
        dispatcher.abort();
        result
    }
}
