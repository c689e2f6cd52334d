//! gRPC transport of the notification service.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use creneau_kit::client::GrpcChannel;
use creneau_kit::errors;
use creneau_proto::centre_directory::v1::GetCentreRequest;
use creneau_proto::centre_directory::v1::centre_directory_client::CentreDirectoryClient;
use creneau_proto::notification::v1::event_outcome::Outcome;
use creneau_proto::notification::v1::{self as pb, event::Kind, notification_server::Notification};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::domain::{self, CentreDetails};
use crate::storage;

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_EVENTS_PER_CALL: usize = 1000;

pub struct NotificationService {
    db: DatabaseConnection,
    centres: Option<CentreDirectoryClient<GrpcChannel>>,
    wakeup: Arc<Notify>,
}

impl NotificationService {
    pub fn new(
        db: DatabaseConnection,
        centres: Option<CentreDirectoryClient<GrpcChannel>>,
        wakeup: Arc<Notify>,
    ) -> Self {
        Self { db, centres, wakeup }
    }

    /// Centre names and addresses make a message useful; a directory that
    /// does not answer in time must not hold messages back, so they then go
    /// out with the centre's id only.
    async fn centre_details(&self, kind: &Kind) -> HashMap<String, CentreDetails> {
        let appointments: Vec<_> = match kind {
            Kind::BookingConfirmed(e) => e.appointments.iter().collect(),
            Kind::BookingCancelled(e) => e.appointments.iter().collect(),
            Kind::BookingMoved(e) => e.appointments.iter().chain(&e.previous).collect(),
        };
        let mut found = HashMap::new();
        let Some(client) = &self.centres else {
            return found;
        };
        for a in appointments {
            if found.contains_key(&a.centre_id) {
                continue;
            }
            let mut request = Request::new(GetCentreRequest { id: a.centre_id.clone() });
            request.set_timeout(LOOKUP_TIMEOUT);
            match client.clone().get_centre(request).await {
                Ok(centre) => {
                    let c = centre.into_inner();
                    found.insert(
                        a.centre_id.clone(),
                        CentreDetails { name: c.name, address: c.address, postcode: c.postcode, city: c.city },
                    );
                }
                Err(status) => tracing::warn!(centre_id = %a.centre_id, %status, "centre lookup failed"),
            }
        }
        found
    }
}

impl NotificationService {
    /// Records one event and its message; false for a redelivery.
    async fn accept(&self, event_id: &str, kind: Kind) -> Result<bool, sea_orm::DbErr> {
        if storage::is_known(&self.db, event_id).await? {
            return Ok(false);
        }
        let centres = self.centre_details(&kind).await;
        let message = domain::render(&kind, &|id| centres.get(id).cloned());
        if message.is_none() {
            tracing::warn!(event_id = %event_id, "event has no reachable recipient");
        }
        storage::accept(&self.db, event_id, kind.name(), message.as_ref(), Utc::now()).await
    }

    /// What becomes of one event. A database that is unreachable or busy
    /// fails the whole call instead (every event would fail alike, and the
    /// relay should wait, not count it against the events).
    async fn outcome_of(&self, event: pb::Event) -> Result<pb::EventOutcome, Status> {
        let answer = |outcome: Outcome, reason: &str| pb::EventOutcome {
            event_id: event.id.clone(),
            outcome: outcome as i32,
            reason: reason.to_owned(),
        };
        let Some(kind) = event.kind.clone() else {
            return Ok(answer(Outcome::UnknownKind, "no kind this version knows"));
        };
        if event.id.trim().is_empty() || creneau_kit::vocab::Id::parse(&event.id, "id").is_err() {
            return Ok(answer(Outcome::Rejected, "the event id is missing or malformed"));
        }
        // Each event's work joins the trace of the request that caused it.
        let span = tracing::info_span!("notification.event", kind = kind.name());
        if !event.traceparent.is_empty() {
            creneau_kit::telemetry::set_parent_from_traceparent(&span, &event.traceparent);
        }
        match self.accept(&event.id, kind).instrument(span).await {
            Ok(true) => Ok(answer(Outcome::Accepted, "")),
            Ok(false) => Ok(answer(Outcome::Duplicate, "")),
            Err(error) if creneau_kit::db::Failure::of(&error).is_transient() => Err(creneau_kit::db::status(&error)),
            Err(error) => {
                tracing::error!(event_id = %event.id, %error, "event could not be recorded");
                Ok(answer(Outcome::Rejected, "the event could not be recorded"))
            }
        }
    }
}

#[tonic::async_trait]
impl Notification for NotificationService {
    #[tracing::instrument(skip_all, fields(events = request.get_ref().events.len()))]
    async fn deliver(&self, request: Request<pb::DeliverRequest>) -> Result<Response<pb::DeliverResponse>, Status> {
        let events = request.into_inner().events;
        if events.len() > MAX_EVENTS_PER_CALL {
            return Err(errors::invalid_argument(format!("at most {MAX_EVENTS_PER_CALL} events per call")));
        }
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            outcomes.push(self.outcome_of(event).await?);
        }
        let accepted = outcomes.iter().filter(|o| o.outcome == Outcome::Accepted as i32).count() as u32;
        if accepted > 0 {
            self.wakeup.notify_one();
        }
        Ok(Response::new(pb::DeliverResponse { accepted, outcomes }))
    }
}
