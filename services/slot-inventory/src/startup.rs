//! Building and running the slot-inventory server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use creneau_kit::server::GrpcServer;
use creneau_kit::statistics::StatisticsKeeper;
use creneau_proto::notification::v1::notification_client::NotificationClient;
use creneau_proto::slot_inventory::v1::{FILE_DESCRIPTOR_SET, slot_inventory_server::SlotInventoryServer};
use tokio::sync::Notify;

use crate::availability::AvailabilityStream;
use crate::grpc::SlotInventoryService;
use crate::relay::Relay;
use crate::settings::{Config, Settings};
use creneau_kit::entrypoint::ServiceSettings;
use sea_orm::DatabaseConnection;

pub const SERVICE: &str = "slot-inventory";

/// The tables the booking path looks rows up in by key, and that grow from
/// empty on the first morning of a campaign.
pub const GROWING_TABLES: &[&str] = &["slots", "holds", "idempotency_keys", "bookings", "appointments", "outbox"];

pub struct Application {
    server: GrpcServer,
    relay: Option<Relay>,
    statistics: Option<StatisticsKeeper>,
    availability: (AvailabilityStream, DatabaseConnection),
}

impl Application {
    /// Parses `settings`, connects and binds; does not migrate (migrations
    /// run beforehand, as a command or a Kubernetes Job).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::from_config(settings.parse().map_err(anyhow::Error::msg)?).await
    }

    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&config.database).await.context("connecting to the database")?;
        let wakeup = Arc::new(Notify::new());
        let relay = match config.notification {
            Some(channel) => Some(Relay::new(
                db.clone(),
                NotificationClient::new(channel),
                wakeup.clone(),
                config.relay_interval,
                config.relay_retries,
            )),
            None => {
                tracing::warn!("no notification_url: outbox events are kept but not relayed");
                None
            }
        };
        let statistics = StatisticsKeeper::new(db.clone(), GROWING_TABLES, Duration::from_secs(1));
        let availability = AvailabilityStream::new();
        let service =
            SlotInventoryService::new(db.clone(), config.verifier, wakeup, config.lifetimes, availability.clone());
        let server = GrpcServer::bind(&config.server)
            .await
            .with_context(|| format!("binding {}", config.server.address()))?
            .add_service(SlotInventoryServer::new(service))
            .add_service(creneau_kit::operations::DeadLettersService::new(db.clone(), crate::storage::outbox::QUEUE))
            .with_reflection([FILE_DESCRIPTOR_SET, creneau_proto::operations::v1::FILE_DESCRIPTOR_SET])
            .with_readiness(creneau_kit::db::readiness(&config.database, SERVICE));
        Ok(Self { server, relay, statistics, availability: (availability, db) })
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(creneau_kit::shutdown::signal()).await
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let relay = self.relay.map(|relay| tokio::spawn(relay.run()));
        let statistics = self.statistics.map(|keeper| tokio::spawn(keeper.run()));
        let (availability, db) = self.availability;
        let subscribers = availability.clone();
        let shutdown = async move {
            shutdown.await;
            subscribers.close();
        };
        let availability = tokio::spawn(availability.run(db));
        let result = self.server.serve(shutdown).await;
        availability.abort();
        for task in relay.into_iter().chain(statistics) {
            task.abort();
        }
        result
    }
}
