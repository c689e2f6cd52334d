//! Building and running the eligibility server.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use creneau_kit::server::GrpcServer;
use std::time::Duration;

use creneau_proto::eligibility::v1::{FILE_DESCRIPTOR_SET, eligibility_server::EligibilityServer};

use crate::rule_book::RuleBook;
use sea_orm::DatabaseConnection;

use crate::grpc::EligibilityService;
use crate::settings::{Config, Settings};
use creneau_kit::entrypoint::ServiceSettings;

pub const SERVICE: &str = "eligibility";

pub struct Application {
    server: GrpcServer,
    rules: RuleBook,
    db: DatabaseConnection,
    refresh: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::from_config(settings.parse().map_err(anyhow::Error::msg)?).await
    }

    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&config.database).await.context("connecting to the database")?;
        let rules = RuleBook::default();
        let service = EligibilityService::new(
            db.clone(),
            Arc::new(config.signer),
            config.retired,
            config.attestation_ttl,
            rules.clone(),
        );
        let server = GrpcServer::bind(&config.server)
            .await
            .with_context(|| format!("binding {}", config.server.address()))?
            .add_service(EligibilityServer::new(service))
            .with_reflection([FILE_DESCRIPTOR_SET])
            .with_readiness(creneau_kit::db::readiness(&config.database, SERVICE));
        Ok(Self { server, rules, db, refresh: config.rules_refresh })
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(creneau_kit::shutdown::signal()).await
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let watcher = tokio::spawn(self.rules.watch(self.db, self.refresh));
        let result = self.server.serve(shutdown).await;
        watcher.abort();
        result
    }
}
