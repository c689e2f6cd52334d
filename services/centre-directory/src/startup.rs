//! Building and running the centre-directory server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use creneau_kit::client::GrpcChannel;
use creneau_kit::metrics::Metrics;
use creneau_kit::server::{GrpcServer, ReadinessCheck};
use creneau_proto::centre_directory::v1::{FILE_DESCRIPTOR_SET, centre_directory_server::CentreDirectoryServer};
use creneau_proto::slot_inventory::v1::slot_inventory_client::SlotInventoryClient;
use sea_orm::DatabaseConnection;

use crate::feeds;
use crate::grpc::CentreDirectoryService;
use crate::memory::Memory;
use crate::settings::{Config, Settings};
use creneau_kit::entrypoint::ServiceSettings;

pub const SERVICE: &str = "centre-directory";

pub struct Application {
    server: GrpcServer,
    feeds: Feeds,
}

/// The background work that keeps memory current.
struct Feeds {
    memory: Arc<Memory>,
    db: DatabaseConnection,
    slots: SlotInventoryClient<GrpcChannel>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::from_config(settings.parse().map_err(anyhow::Error::msg)?).await
    }

    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&config.database).await.context("connecting to the database")?;
        let memory = Arc::new(Memory::default());
        let service = CentreDirectoryService::new(db.clone(), memory.clone());
        let server = GrpcServer::bind(&config.server)
            .await
            .with_context(|| format!("binding {}", config.server.address()))?
            .add_service(
                CentreDirectoryServer::new(service).max_decoding_message_size(crate::grpc::MAX_IMPORT_BYTES + 1024),
            )
            .with_reflection([FILE_DESCRIPTOR_SET])
            .with_readiness(readiness(creneau_kit::db::readiness(&config.database, SERVICE), memory.clone()))
            .with_condition(AVAILABILITY, freshness(memory.clone(), config.stale_after));
        let feeds = Feeds { memory, db, slots: SlotInventoryClient::new(config.slot_inventory) };
        Ok(Self { server, feeds })
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(creneau_kit::shutdown::signal()).await
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Feeds { memory, db, slots } = self.feeds;
        let tasks = [
            tokio::spawn(feeds::follow_directory(memory.clone(), db)),
            tokio::spawn(feeds::follow_availability(memory, slots)),
        ];
        let result = self.server.serve(shutdown).await;
        for task in tasks {
            task.abort();
        }
        result
    }
}

/// The health service name that reports whether availability is fresh.
pub const AVAILABILITY: &str = "availability";

/// Ready once the database answers, the directory is loaded and a first
/// availability snapshot is in.
fn readiness(database: ReadinessCheck, memory: Arc<Memory>) -> ReadinessCheck {
    Arc::new(move || {
        let (database, memory) = (database.clone(), memory.clone());
        Box::pin(async move {
            database().await?;
            memory.ready()
        })
    })
}

/// Serving while availability is younger than `stale_after`; its age is
/// exported either way.
fn freshness(memory: Arc<Memory>, stale_after: Duration) -> ReadinessCheck {
    let metrics = Metrics::current();
    Arc::new(move || {
        let (memory, metrics) = (memory.clone(), metrics.clone());
        Box::pin(async move {
            let age = memory.availability_age(chrono::Utc::now()).ok_or("no availability yet")?;
            metrics.set_stream_age(AVAILABILITY, age);
            if age > stale_after {
                return Err(format!("availability is {:.1} s old", age.as_secs_f64()));
            }
            Ok(())
        })
    })
}
