//! Building and running the eligibility server.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use creneau_kit::server::GrpcServer;
use creneau_proto::eligibility::v1::{FILE_DESCRIPTOR_SET, eligibility_server::EligibilityServer};
use sea_orm::DatabaseConnection;

use crate::grpc::EligibilityService;
use crate::settings::Settings;

pub const SERVICE: &str = "eligibility";

pub struct Application {
    server: GrpcServer,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = creneau_kit::db::connect(&settings.database).await.context("connecting to the database")?;
        Self::build_with(settings, db).await
    }

    pub async fn build_with(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let signer = Arc::new(settings.eligibility.signer()?);
        let ttl = chrono::Duration::seconds(i64::from(settings.eligibility.attestation_ttl_secs));
        let service = EligibilityService::new(db.clone(), signer, ttl);
        let server = GrpcServer::bind(&settings.server)
            .await
            .with_context(|| format!("binding {}", settings.server.address()))?
            .add_service(EligibilityServer::new(service))
            .with_reflection(FILE_DESCRIPTOR_SET)
            .with_readiness(creneau_kit::db::readiness(db, SERVICE));
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
