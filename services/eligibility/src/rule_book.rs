//! The published rules, in memory: `Check` never reads the database. Every
//! replica polls the publication version and reloads when it changes, so
//! a newly published phase takes effect everywhere within a second or two,
//! without a restart.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::RwLock;

use crate::domain::{Catalogues, Rule};
use crate::storage;

#[derive(Default)]
struct Snapshot {
    loaded: bool,
    version: Option<DateTime<Utc>>,
    /// Published sets in effective order.
    sets: Vec<(DateTime<Utc>, Arc<Vec<Rule>>)>,
    catalogues: Arc<Catalogues>,
}

#[derive(Clone, Default)]
pub struct RuleBook {
    snapshot: Arc<RwLock<Snapshot>>,
}

impl RuleBook {
    /// Reloads when the publication version moved; true if it did.
    pub async fn refresh(&self, db: &DatabaseConnection) -> Result<bool, DbErr> {
        let version = storage::version(db).await?;
        {
            let current = self.snapshot.read().await;
            if current.loaded && current.version == version {
                return Ok(false);
            }
        }
        let sets = storage::published(db).await?.into_iter().map(|(at, rules)| (at, Arc::new(rules))).collect();
        let catalogues = Arc::new(storage::load_catalogues(db).await?);
        *self.snapshot.write().await = Snapshot { loaded: true, version, sets, catalogues };
        tracing::info!(version = ?version, "eligibility rules loaded");
        Ok(true)
    }

    /// The rules in force at `now` (the latest set effective by then) and
    /// the catalogues; loads them first if nothing is loaded yet.
    pub async fn in_force(
        &self,
        db: &DatabaseConnection,
        now: DateTime<Utc>,
    ) -> Result<(Arc<Vec<Rule>>, Arc<Catalogues>), DbErr> {
        if !self.snapshot.read().await.loaded {
            self.refresh(db).await?;
        }
        let snapshot = self.snapshot.read().await;
        let rules =
            snapshot.sets.iter().rev().find(|(at, _)| *at <= now).map(|(_, rules)| rules.clone()).unwrap_or_default();
        Ok((rules, snapshot.catalogues.clone()))
    }

    /// Polls for new publications until the task is dropped.
    pub async fn watch(self, db: DatabaseConnection, every: Duration) {
        loop {
            if let Err(error) = self.refresh(&db).await {
                tracing::warn!(%error, "cannot refresh eligibility rules");
            }
            tokio::time::sleep(every).await;
        }
    }
}
