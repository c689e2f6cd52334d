//! Building and running the notification server.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use creneau_kit::server::GrpcServer;
use creneau_proto::centre_directory::v1::centre_directory_client::CentreDirectoryClient;
use creneau_proto::notification::v1::{FILE_DESCRIPTOR_SET, notification_server::NotificationServer};
use tokio::sync::Notify;

use crate::dispatcher::Dispatcher;
use crate::grpc::NotificationService;
use crate::maildir::Maildir;
use crate::settings::{Config, Settings};
use creneau_kit::entrypoint::ServiceSettings;

pub const SERVICE: &str = "notification";

pub struct Application {
    server: GrpcServer,
    dispatcher: Dispatcher,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::from_config(settings.parse().map_err(anyhow::Error::msg)?).await
    }

    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&config.database).await.context("connecting to the database")?;
        let channel = Maildir::open(&config.maildir, &config.from)
            .await
            .with_context(|| format!("opening maildir {}", config.maildir.display()))?;
        let wakeup = Arc::new(Notify::new());
        let centres = config.centre_directory.map(CentreDirectoryClient::new);
        let service = NotificationService::new(db.clone(), centres, wakeup.clone());
        let server = GrpcServer::bind(&config.server)
            .await
            .with_context(|| format!("binding {}", config.server.address()))?
            .add_service(NotificationServer::new(service))
            .add_service(creneau_kit::operations::DeadLettersService::new(db.clone(), crate::storage::QUEUE))
            .with_reflection([FILE_DESCRIPTOR_SET, creneau_proto::operations::v1::FILE_DESCRIPTOR_SET])
            .with_readiness(creneau_kit::db::readiness(&config.database, SERVICE));
        let dispatcher =
            Dispatcher { db, channel, wakeup, interval: config.dispatch_interval, retries: config.retries };
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
