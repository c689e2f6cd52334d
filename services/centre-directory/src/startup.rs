//! Building and running the centre-directory server.

use std::future::Future;

use anyhow::Context;
use creneau_kit::server::GrpcServer;
use creneau_proto::centre_directory::v1::{FILE_DESCRIPTOR_SET, centre_directory_server::CentreDirectoryServer};
use creneau_proto::slot_inventory::v1::slot_inventory_client::SlotInventoryClient;

use crate::grpc::CentreDirectoryService;
use crate::settings::{Config, Settings};
use creneau_kit::entrypoint::ServiceSettings;

pub const SERVICE: &str = "centre-directory";

pub struct Application {
    server: GrpcServer,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::from_config(settings.parse().map_err(anyhow::Error::msg)?).await
    }

    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&config.database).await.context("connecting to the database")?;
        let service = CentreDirectoryService::new(db, SlotInventoryClient::new(config.slot_inventory));
        let server = GrpcServer::bind(&config.server)
            .await
            .with_context(|| format!("binding {}", config.server.address()))?
            .add_service(CentreDirectoryServer::new(service))
            .with_reflection([FILE_DESCRIPTOR_SET])
            .with_readiness(creneau_kit::db::readiness(&config.database, SERVICE));
        Ok(Self { server })
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(creneau_kit::shutdown::signal()).await
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        self.server.serve(shutdown).await
    }
}
