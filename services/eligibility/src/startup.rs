//! Building and running the eligibility server.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use creneau_kit::server::GrpcServer;
use std::time::Duration;

use creneau_proto::eligibility::v1::{FILE_DESCRIPTOR_SET, VerificationKey, eligibility_server::EligibilityServer};

use crate::rule_book::RuleBook;
use sea_orm::DatabaseConnection;

use crate::grpc::EligibilityService;
use crate::settings::Settings;

pub const SERVICE: &str = "eligibility";

pub struct Application {
    server: GrpcServer,
    rules: RuleBook,
    db: DatabaseConnection,
    refresh: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&settings.database).await.context("connecting to the database")?;
        Self::build_with(settings, db).await
    }

    pub async fn build_with(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let e = &settings.eligibility;
        let signer = Arc::new(e.signer()?);
        let ttl = chrono::Duration::seconds(i64::from(e.attestation_ttl_secs));
        let retired = e
            .retired_verification_keys
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|spec| {
                let (id, key) = spec.trim().split_once(':').ok_or_else(|| anyhow::anyhow!("bad retired key"))?;
                use base64::Engine;
                let public_key = base64::engine::general_purpose::STANDARD.decode(key)?;
                Ok(VerificationKey { key_id: id.to_owned(), public_key })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rules = RuleBook::default();
        let refresh = Duration::from_millis(e.rules_refresh_ms.max(100));
        let service = EligibilityService::new(db.clone(), signer, retired, ttl, rules.clone());
        let server = GrpcServer::bind(&settings.server)
            .await
            .with_context(|| format!("binding {}", settings.server.address()))?
            .add_service(EligibilityServer::new(service))
            .with_reflection([FILE_DESCRIPTOR_SET])
            .with_readiness(creneau_kit::db::readiness(&settings.database, SERVICE));
        Ok(Self { server, rules, db, refresh })
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
