//! Building and running the slot-inventory server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use creneau_kit::attestation::Verifier;
use creneau_kit::server::GrpcServer;
use creneau_kit::statistics::StatisticsKeeper;
use creneau_proto::notification::v1::notification_client::NotificationClient;
use creneau_proto::slot_inventory::v1::{FILE_DESCRIPTOR_SET, slot_inventory_server::SlotInventoryServer};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use crate::grpc::{Lifetimes, SlotInventoryService};
use crate::relay::Relay;
use crate::settings::Settings;

pub const SERVICE: &str = "slot-inventory";

/// The tables the booking path looks rows up in by key, and that grow from
/// empty on the first morning of a campaign.
pub const GROWING_TABLES: &[&str] = &["slots", "holds", "idempotency_keys", "bookings", "appointments", "outbox"];

pub struct Application {
    server: GrpcServer,
    relay: Option<Relay>,
    statistics: Option<StatisticsKeeper>,
}

impl Application {
    /// Connects and binds; does not migrate (migrations run beforehand, as
    /// a command or a Kubernetes Job).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&settings.database).await.context("connecting to the database")?;
        Self::build_with(settings, db).await
    }

    pub async fn build_with(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let verifier = Verifier::parse(&settings.slot_inventory.verification_keys)?;
        let wakeup = Arc::new(Notify::new());
        let relay = match &settings.slot_inventory.notification_url {
            Some(url) => Some(Relay::new(
                db.clone(),
                NotificationClient::new(creneau_kit::client::channel(url)?),
                wakeup.clone(),
                Duration::from_millis(settings.slot_inventory.relay_interval_ms),
                settings.slot_inventory.relay_retries(),
            )),
            None => {
                tracing::warn!("no notification_url: outbox events are kept but not relayed");
                None
            }
        };
        let s = &settings.slot_inventory;
        let lifetimes = Lifetimes {
            hold: chrono::Duration::seconds(i64::from(s.hold_ttl_secs)),
            idempotency_key: chrono::Duration::seconds(i64::from(s.idempotency_ttl_secs)),
        };
        let statistics = StatisticsKeeper::new(db.clone(), GROWING_TABLES, Duration::from_secs(1));
        let service = SlotInventoryService::new(db.clone(), verifier, wakeup, lifetimes);
        let server = GrpcServer::bind(&settings.server)
            .await
            .with_context(|| format!("binding {}", settings.server.address()))?
            .add_service(SlotInventoryServer::new(service))
            .add_service(creneau_kit::operations::DeadLettersService::new(db.clone(), crate::storage::outbox::QUEUE))
            .with_reflection([FILE_DESCRIPTOR_SET, creneau_proto::operations::v1::FILE_DESCRIPTOR_SET])
            .with_readiness(creneau_kit::db::readiness(&settings.database, SERVICE));
        Ok(Self { server, relay, statistics })
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
        let result = self.server.serve(shutdown).await;
        for task in relay.into_iter().chain(statistics) {
            task.abort();
        }
        result
    }
}
