//! Relays outbox events to the notification service. Runs in every
//! replica; leases keep replicas off each other's batches, and the
//! receiver's deduplication makes a repeated delivery harmless.

use std::sync::Arc;
use std::time::Duration;

use creneau_kit::client::GrpcChannel;
use creneau_proto::notification::v1::DeliverRequest;
use creneau_proto::notification::v1::notification_client::NotificationClient;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::storage::outbox;

const BATCH: u32 = 100;
const LEASE: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const DELIVER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Relay {
    db: DatabaseConnection,
    client: NotificationClient<GrpcChannel>,
    wakeup: Arc<Notify>,
    interval: Duration,
}

impl Relay {
    pub fn new(
        db: DatabaseConnection,
        client: NotificationClient<GrpcChannel>,
        wakeup: Arc<Notify>,
        interval: Duration,
    ) -> Self {
        Self { db, client, wakeup, interval }
    }

    /// Runs until the task is dropped. Dropping mid-batch loses nothing:
    /// the lease runs out and the batch is claimed again.
    pub async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.relay_once().await {
                Ok(n) if n == BATCH as usize => continue,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    tokio::select! {
                        () = self.wakeup.notified() => {}
                        () = tokio::time::sleep(self.interval) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "outbox relay failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Relays one batch; returns how many events it published.
    pub async fn relay_once(&mut self) -> anyhow::Result<usize> {
        let batch = outbox::claim(&self.db, LEASE, BATCH).await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        // The relay joins the trace of the batch's first event; each event
        // carries its own trace context to notification.
        let span = tracing::info_span!("outbox.relay", events = ids.len());
        if let Some((_, first)) = batch.first().filter(|(_, e)| !e.traceparent.is_empty()) {
            creneau_kit::telemetry::set_parent_from_traceparent(&span, &first.traceparent);
        }
        let mut request =
            tonic::Request::new(DeliverRequest { events: batch.into_iter().map(|(_, event)| event).collect() });
        request.set_timeout(DELIVER_TIMEOUT);
        match self.client.deliver(request).instrument(span).await {
            Ok(_) => {
                outbox::mark_published(&self.db, &ids, chrono::Utc::now()).await?;
                tracing::debug!(events = ids.len(), "outbox events relayed");
                Ok(ids.len())
            }
            Err(status) => {
                outbox::release(&self.db, &ids).await?;
                Err(anyhow::anyhow!("notification refused the batch: {status}"))
            }
        }
    }
}
