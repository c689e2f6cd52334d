//! Sends stored messages through the channel. Runs in every replica;
//! leases keep replicas off each other's messages. A failed send is tried
//! again later, waiting longer each time, and set aside as a dead letter
//! after the policy's attempts, while the other messages go out.

use std::sync::Arc;
use std::time::Duration;

use creneau_kit::db::queue::RetryPolicy;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use crate::maildir::Maildir;
use crate::storage;

const BATCH: u32 = 50;
const LEASE: Duration = Duration::from_secs(30);

pub struct Dispatcher {
    pub(crate) db: DatabaseConnection,
    pub(crate) channel: Maildir,
    pub(crate) wakeup: Arc<Notify>,
    pub(crate) interval: Duration,
    pub(crate) retries: RetryPolicy,
}

impl Dispatcher {
    pub async fn run(self) {
        loop {
            match self.dispatch_once().await {
                Ok(n) if n == BATCH as usize => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "message dispatch failed"),
            }
            tokio::select! {
                () = self.wakeup.notified() => {}
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    pub async fn dispatch_once(&self) -> Result<usize, sea_orm::DbErr> {
        let batch = storage::claim_unsent(&self.db, LEASE, BATCH).await?;
        for message in &batch {
            match self.channel.deliver(message).await {
                Ok(()) => {
                    storage::mark_sent(&self.db, &message.id, chrono::Utc::now()).await?;
                    tracing::info!(message_id = %message.id, channel = %message.channel, "message delivered");
                }
                Err(error) => {
                    tracing::warn!(message_id = %message.id, %error, "message delivery failed");
                    storage::QUEUE.fail(&self.db, &message.id, &error.to_string(), &self.retries).await?;
                }
            }
        }
        Ok(batch.len())
    }
}
