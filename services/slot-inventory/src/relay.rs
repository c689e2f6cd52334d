//! Relays outbox events to the notification service. Runs in every
//! replica; leases keep replicas off each other's batches, and the
//! receiver's deduplication makes a repeated delivery harmless. Events are
//! acknowledged one by one (see [`Relay::relay_once`]).

use std::sync::Arc;
use std::time::Duration;

use creneau_kit::client::GrpcChannel;
use std::collections::HashMap;

use creneau_kit::db::queue::RetryPolicy;
use creneau_proto::notification::v1::event_outcome::Outcome;
use creneau_proto::notification::v1::notification_client::NotificationClient;
use creneau_proto::notification::v1::{DeliverRequest, Event, EventOutcome};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::storage::outbox;

const BATCH: u32 = 100;
const LEASE: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const DELIVER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an event of a kind this version does not know waits before it
/// is offered again (to a newer replica, in a rolling upgrade).
const PARKED: Duration = Duration::from_secs(60);
const UNKNOWN_KIND: &str = "an event kind this version does not know";

pub struct Relay {
    db: DatabaseConnection,
    client: NotificationClient<GrpcChannel>,
    wakeup: Arc<Notify>,
    interval: Duration,
    retries: RetryPolicy,
}

impl Relay {
    pub fn new(
        db: DatabaseConnection,
        client: NotificationClient<GrpcChannel>,
        wakeup: Arc<Notify>,
        interval: Duration,
        retries: RetryPolicy,
    ) -> Self {
        Self { db, client, wakeup, interval, retries }
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

    /// Relays one batch; returns how many rows it settled (published,
    /// put off or set aside). Each event is acknowledged on its own: one
    /// that cannot be read or that notification will not take waits or is
    /// set aside, and the others are published.
    pub async fn relay_once(&mut self) -> anyhow::Result<usize> {
        let batch = outbox::claim(&self.db, LEASE, BATCH).await?;
        let claimed = batch.len();
        let mut sendable = Vec::with_capacity(claimed);
        for row in batch {
            match row.event {
                Err(why) => outbox::QUEUE.bury(&self.db, &row.id.to_string(), &why).await?,
                // Written by a newer version (a rolling upgrade): decoding
                // dropped its kind, so it waits for a relay that knows it.
                Ok(event) if event.kind.is_none() => {
                    outbox::QUEUE.postpone(&self.db, &row.id.to_string(), PARKED, UNKNOWN_KIND).await?;
                }
                Ok(event) => sendable.push((row.id, event)),
            }
        }
        if sendable.is_empty() {
            return Ok(claimed);
        }
        let ids: Vec<i64> = sendable.iter().map(|(id, _)| *id).collect();
        // The relay joins the trace of the batch's first event; each event
        // carries its own trace context to notification.
        let span = tracing::info_span!("outbox.relay", events = ids.len());
        if let Some((_, first)) = sendable.first().filter(|(_, e)| !e.traceparent.is_empty()) {
            creneau_kit::telemetry::set_parent_from_traceparent(&span, &first.traceparent);
        }
        let events: Vec<Event> = sendable.iter().map(|(_, event)| event.clone()).collect();
        let mut request = tonic::Request::new(DeliverRequest { events });
        request.set_timeout(DELIVER_TIMEOUT);
        let answer = match self.client.deliver(request).instrument(span).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                // Notification was not reached or refused the call: the
                // events are not at fault, so no attempt is counted.
                let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                outbox::QUEUE.release(&self.db, &ids).await?;
                return Err(anyhow::anyhow!("notification refused the batch: {status}"));
            }
        };
        let outcomes: HashMap<&str, &EventOutcome> = answer.outcomes.iter().map(|o| (o.event_id.as_str(), o)).collect();
        let (mut published, mut parked, mut refused) = (Vec::new(), Vec::new(), Vec::new());
        for (id, event) in &sendable {
            // An older notification answers for the batch as a whole.
            let outcome = if answer.outcomes.is_empty() {
                Some(Outcome::Accepted)
            } else {
                outcomes.get(event.id.as_str()).and_then(|o| Outcome::try_from(o.outcome).ok())
            };
            let reason = outcomes.get(event.id.as_str()).map(|o| o.reason.as_str()).unwrap_or_default();
            match outcome {
                Some(Outcome::Accepted | Outcome::Duplicate) => published.push(*id),
                Some(Outcome::UnknownKind) => parked.push(*id),
                Some(Outcome::Rejected) => refused.push((*id, format!("notification rejected it: {reason}"))),
                Some(Outcome::Unspecified) | None => {
                    refused.push((*id, "notification gave no answer for this event".to_owned()));
                }
            }
        }
        // What notification took is recorded first: a failure below must
        // not send it again.
        outbox::mark_published(&self.db, &published, chrono::Utc::now()).await?;
        for id in parked {
            outbox::QUEUE.postpone(&self.db, &id.to_string(), PARKED, UNKNOWN_KIND).await?;
        }
        for (id, why) in refused {
            outbox::QUEUE.fail(&self.db, &id.to_string(), &why, &self.retries).await?;
        }
        tracing::debug!(published = published.len(), claimed, "outbox events relayed");
        Ok(claimed)
    }
}
