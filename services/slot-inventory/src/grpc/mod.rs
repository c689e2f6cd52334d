//! gRPC transport: proto ↔ domain, and the one place booking errors become
//! statuses.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use creneau_kit::attestation::Verifier;
use creneau_kit::errors::{self, reason};
use creneau_proto::slot_inventory::v1::{self as pb, slot_inventory_server::SlotInventory};
use sea_orm::{DatabaseConnection, DbErr};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tonic::{Code, Request, Response, Status};

use crate::domain::{BookingError, Citizen, Contact, NewSlot, Reference, Secret, SlotWindow};
use crate::storage::{self, BookCommand, BookingView, entities::slot};

const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;
const MAX_CENTRES_PER_SUMMARY: usize = 500;
const MAX_SLOTS_PER_CREATE: usize = 5000;

pub struct SlotInventoryService {
    db: DatabaseConnection,
    verifier: Verifier,
    relay_wakeup: Arc<Notify>,
}

impl SlotInventoryService {
    pub fn new(db: DatabaseConnection, verifier: Verifier, relay_wakeup: Arc<Notify>) -> Self {
        Self { db, verifier, relay_wakeup }
    }

    fn book_command(&self, request: pb::BookRequest, now: DateTime<Utc>) -> Result<BookCommand, BookingError> {
        let key = request.idempotency_key.trim();
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN || key.chars().any(char::is_control) {
            return Err(BookingError::Invalid(format!(
                "idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable characters"
            )));
        }
        if request.slot_id.trim().is_empty() {
            return Err(BookingError::Invalid("slot_id is required".into()));
        }
        let c = request.citizen.ok_or_else(|| BookingError::Invalid("citizen is required".into()))?;
        let contact = Contact::parse(c.email.as_deref(), c.phone.as_deref())?;
        let citizen =
            Citizen::parse(&c.first_name, &c.last_name, &c.birth_date, contact, &c.language, now.date_naive())?;
        if request.attestation.trim().is_empty() {
            return Err(BookingError::NotEligible);
        }
        let claims = self.verifier.verify(request.attestation.trim(), now)?;
        if claims.birth_date != citizen.birth_date || claims.dose != 1 {
            return Err(BookingError::AttestationMismatch);
        }
        let request_hash = {
            let mut h = Sha256::new();
            for part in [
                request.slot_id.as_str(),
                citizen.identity().as_str(),
                citizen.contact.email.as_deref().unwrap_or(""),
                citizen.contact.phone.as_deref().unwrap_or(""),
                citizen.language.code(),
                request.attestation.trim(),
            ] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.finalize().iter().map(|b| format!("{b:02x}")).collect()
        };
        Ok(BookCommand {
            slot_id: request.slot_id.trim().to_owned(),
            citizen,
            idempotency_key: key.to_owned(),
            request_hash,
        })
    }
}

fn to_status(error: BookingError) -> Status {
    use BookingError::*;
    match error {
        Invalid(msg) => errors::invalid_argument(msg),
        SlotNotFound(_) | SlotStarted => {
            errors::status(Code::FailedPrecondition, reason::VALIDATION, error.to_string())
        }
        SlotFull => errors::status(Code::FailedPrecondition, reason::SLOT_FULL, error.to_string()),
        AlreadyBooked => errors::status(Code::AlreadyExists, reason::ALREADY_BOOKED, error.to_string()),
        NotEligible => errors::status(Code::PermissionDenied, reason::NOT_ELIGIBLE, error.to_string()),
        InvalidAttestation(_) | AttestationMismatch => {
            errors::status(Code::PermissionDenied, reason::INVALID_ATTESTATION, error.to_string())
        }
        IdempotencyConflict => {
            errors::status(Code::FailedPrecondition, reason::IDEMPOTENCY_CONFLICT, error.to_string())
        }
        NotFound => errors::not_found(error.to_string()),
        Storage(err) => db_status(err),
    }
}

/// A saturated pool is back-pressure the caller may retry, not a fault.
fn db_status(err: DbErr) -> Status {
    match err {
        DbErr::ConnectionAcquire(_) => {
            errors::status(Code::Unavailable, reason::UNAVAILABLE, "database busy, retry later")
        }
        other => errors::internal(&other),
    }
}

fn slot_to_pb(s: slot::Model) -> pb::Slot {
    pb::Slot {
        id: s.id,
        centre_id: s.centre_id,
        vaccine: s.vaccine,
        starts_at: s.starts_at.to_rfc3339(),
        ends_at: s.ends_at.to_rfc3339(),
        capacity: s.capacity.max(0) as u32,
        booked: s.booked.max(0) as u32,
    }
}

fn booking_to_pb(view: BookingView) -> pb::Booking {
    pb::Booking {
        reference: view.reference,
        secret: view.secret,
        status: view.status.as_str().to_owned(),
        appointments: view
            .appointments
            .into_iter()
            .map(|a| pb::Appointment {
                dose: a.dose as u32,
                slot_id: a.slot_id,
                centre_id: a.centre_id,
                vaccine: a.vaccine,
                starts_at: a.starts_at.to_rfc3339(),
                ends_at: a.ends_at.to_rfc3339(),
            })
            .collect(),
        replayed: view.replayed,
    }
}

fn credentials(reference: &str, secret: &str) -> Result<(Reference, Secret), Status> {
    let reference = Reference::parse(reference).map_err(to_status)?;
    Ok((reference, Secret::from_presented(secret)))
}

#[tonic::async_trait]
impl SlotInventory for SlotInventoryService {
    #[tracing::instrument(skip_all, fields(centre_id = %request.get_ref().centre_id))]
    async fn list_slots(
        &self,
        request: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        let r = request.into_inner();
        let now = Utc::now();
        let window = SlotWindow::parse(&r.from, r.days, now.date_naive()).map_err(to_status)?;
        let slots =
            storage::list_slots(&self.db, &r.centre_id, window, r.available_only, now).await.map_err(db_status)?;
        Ok(Response::new(pb::ListSlotsResponse { slots: slots.into_iter().map(slot_to_pb).collect() }))
    }

    #[tracing::instrument(skip_all, fields(slot_id = %request.get_ref().slot_id))]
    async fn book(&self, request: Request<pb::BookRequest>) -> Result<Response<pb::Booking>, Status> {
        let now = Utc::now();
        let command = self.book_command(request.into_inner(), now).map_err(to_status)?;
        let view = storage::book(&self.db, &command, now).await.map_err(to_status)?;
        if !view.replayed {
            self.relay_wakeup.notify_one();
            tracing::info!(reference = %view.reference, "booking confirmed");
        }
        Ok(Response::new(booking_to_pb(view)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_appointment(
        &self,
        request: Request<pb::GetAppointmentRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let r = request.into_inner();
        let (reference, secret) = credentials(&r.reference, &r.secret)?;
        let view = storage::get(&self.db, &reference, &secret).await.map_err(to_status)?;
        Ok(Response::new(booking_to_pb(view)))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel(&self, request: Request<pb::CancelRequest>) -> Result<Response<pb::Booking>, Status> {
        let r = request.into_inner();
        let (reference, secret) = credentials(&r.reference, &r.secret)?;
        let view = storage::cancel(&self.db, &reference, &secret, Utc::now()).await.map_err(to_status)?;
        self.relay_wakeup.notify_one();
        tracing::info!(reference = %view.reference, "booking cancelled");
        Ok(Response::new(booking_to_pb(view)))
    }

    #[tracing::instrument(skip_all, fields(centres = request.get_ref().centre_ids.len()))]
    async fn availability_summary(
        &self,
        request: Request<pb::AvailabilitySummaryRequest>,
    ) -> Result<Response<pb::AvailabilitySummaryResponse>, Status> {
        let r = request.into_inner();
        if r.centre_ids.len() > MAX_CENTRES_PER_SUMMARY {
            return Err(errors::invalid_argument(format!("at most {MAX_CENTRES_PER_SUMMARY} centres per call")));
        }
        let from = match r.from.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Utc::now(),
            Some(raw) => DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| errors::invalid_argument("from must be an RFC 3339 timestamp"))?,
        };
        let vaccine = r
            .vaccine
            .as_deref()
            .map(|v| v.parse::<creneau_kit::vocab::Vaccine>().map_err(|e| errors::invalid_argument(e.to_string())))
            .transpose()?;
        let window = SlotWindow::from_instant(from, r.days).map_err(to_status)?;
        let rows = storage::availability(&self.db, &r.centre_ids, window, vaccine.map(|v| v.code()))
            .await
            .map_err(db_status)?;
        Ok(Response::new(pb::AvailabilitySummaryResponse {
            centres: rows
                .into_iter()
                .map(|a| pb::CentreAvailability {
                    centre_id: a.centre_id,
                    next_slot: a.next_slot.map(|t| t.to_rfc3339()),
                    available_slots: a.available.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(centre_id = %request.get_ref().centre_id))]
    async fn create_slots(
        &self,
        request: Request<pb::CreateSlotsRequest>,
    ) -> Result<Response<pb::CreateSlotsResponse>, Status> {
        let r = request.into_inner();
        if r.centre_id.trim().is_empty() {
            return Err(errors::invalid_argument("centre_id is required"));
        }
        if r.slots.len() > MAX_SLOTS_PER_CREATE {
            return Err(errors::invalid_argument(format!("at most {MAX_SLOTS_PER_CREATE} slots per call")));
        }
        let slots = r
            .slots
            .iter()
            .map(|s| NewSlot::parse(&s.vaccine, &s.starts_at, &s.ends_at, s.capacity))
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_status)?;
        let stored =
            storage::create_slots(&self.db, r.centre_id.trim(), &slots, Utc::now()).await.map_err(db_status)?;
        Ok(Response::new(pb::CreateSlotsResponse { slots: stored.into_iter().map(slot_to_pb).collect() }))
    }
}
