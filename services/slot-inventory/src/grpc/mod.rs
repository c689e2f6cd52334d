//! gRPC transport: proto ↔ domain, and the one place booking errors become
//! statuses. Citizen-facing calls are in `citizen`, staff calls in `staff`.

mod citizen;
mod staff;

use std::sync::Arc;

use chrono::Utc;
use creneau_kit::attestation::Verifier;
use creneau_kit::errors::{self, reason};
use creneau_kit::vocab::Id;
use creneau_proto::slot_inventory::v1::{self as pb, slot_inventory_server::SlotInventory};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::Notify;
use tonic::{Code, Request, Response, Status};

use crate::availability::AvailabilityStream;
use crate::domain::{BookingError, SlotWindow};
use crate::slot_lists::ListKey;
use crate::storage::{self, BookingView, SlotView};

pub use crate::settings::Lifetimes;

pub struct SlotInventoryService {
    db: DatabaseConnection,
    verifier: Verifier,
    relay_wakeup: Arc<Notify>,
    lifetimes: Lifetimes,
    vaccines: storage::VaccineCatalogue,
    availability: AvailabilityStream,
}

impl SlotInventoryService {
    pub fn new(
        db: DatabaseConnection,
        verifier: Verifier,
        relay_wakeup: Arc<Notify>,
        lifetimes: Lifetimes,
        availability: AvailabilityStream,
    ) -> Self {
        Self { db, verifier, relay_wakeup, lifetimes, vaccines: storage::VaccineCatalogue::default(), availability }
    }

    /// A citizen who booked here sees it in the slot lists this replica
    /// answers next; other replicas drop theirs within a tenth of a second.
    fn seen(&self, booking: pb::Booking) -> pb::Booking {
        self.availability.slot_lists.invalidate(booking.appointments.iter().map(|a| &a.centre_id));
        booking
    }

    async fn vaccines(&self) -> Result<Arc<storage::Vaccines>, Status> {
        self.vaccines.current(&self.db).await.map_err(db_status)
    }
}

pub(crate) fn to_status(error: BookingError) -> Status {
    use BookingError::*;
    let precondition =
        |reason: &str, error: &BookingError| errors::status(Code::FailedPrecondition, reason, error.to_string());
    match error {
        Invalid(msg) => errors::invalid_argument(msg),
        SlotNotFound(_) | SlotStarted => precondition(reason::VALIDATION, &error),
        SlotFull | SlotClosed | SecondSlotFull => precondition(reason::SLOT_FULL, &error),
        NoSecondDoseSlot(..) => precondition(reason::NO_SECOND_DOSE_SLOT, &error),
        HoldNotFound => precondition(reason::HOLD_EXPIRED, &error),
        HoldConflict => errors::status(Code::Aborted, reason::UNAVAILABLE, error.to_string()),
        AlreadyBooked => errors::status(Code::AlreadyExists, reason::ALREADY_BOOKED, error.to_string()),
        NotEligible => errors::status(Code::PermissionDenied, reason::NOT_ELIGIBLE, error.to_string()),
        InvalidAttestation(_) | AttestationMismatch => {
            errors::status(Code::PermissionDenied, reason::INVALID_ATTESTATION, error.to_string())
        }
        IdempotencyConflict => precondition(reason::IDEMPOTENCY_CONFLICT, &error),
        NotFound => errors::not_found(error.to_string()),
        Contended => errors::status(Code::Aborted, reason::UNAVAILABLE, error.to_string()),
        Storage(err) => db_status(err),
    }
}

/// Input refused before it reaches the domain (an identifier, a date).
pub(crate) fn invalid(error: impl std::fmt::Display) -> Status {
    errors::invalid_argument(error.to_string())
}

pub(crate) fn db_status(err: DbErr) -> Status {
    creneau_kit::db::status(&err)
}

fn slot_to_pb(view: SlotView) -> pb::Slot {
    let s = view.slot;
    pb::Slot {
        id: s.id,
        centre_id: s.centre_id,
        vaccine: s.vaccine,
        starts_at: s.starts_at.to_rfc3339(),
        ends_at: s.ends_at.to_rfc3339(),
        capacity: s.capacity.max(0) as u32,
        booked: s.booked.max(0) as u32,
        held: view.held.clamp(0, i64::from(u32::MAX)) as u32,
        status: s.status,
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

#[tonic::async_trait]
impl SlotInventory for SlotInventoryService {
    #[tracing::instrument(skip_all, fields(centre_id = %request.get_ref().centre_id))]
    async fn list_slots(
        &self,
        request: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        let r = request.into_inner();
        let now = Utc::now();
        let centre_id = Id::parse(&r.centre_id, "centre_id").map_err(invalid)?;
        let window = SlotWindow::parse(&r.from, r.days, now.date_naive()).map_err(to_status)?;
        let key = ListKey { start: window.start, end: window.end, available_only: r.available_only };
        let cache = &self.availability.slot_lists;
        if let Some(list) = cache.get(centre_id.as_str(), &key) {
            return Ok(Response::new((*list).clone()));
        }
        let read_at = std::time::Instant::now();
        let slots = storage::list_slots(&self.db, centre_id.as_str(), window, r.available_only, now)
            .await
            .map_err(db_status)?;
        let list = Arc::new(pb::ListSlotsResponse { slots: slots.into_iter().map(slot_to_pb).collect() });
        cache.put(centre_id.as_str(), key, read_at, list.clone());
        Ok(Response::new(Arc::unwrap_or_clone(list)))
    }

    #[tracing::instrument(skip_all)]
    async fn book(&self, request: Request<pb::BookRequest>) -> Result<Response<pb::Booking>, Status> {
        self.book_impl(request.into_inner()).await.map(|b| self.seen(b)).map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn get_appointment(
        &self,
        request: Request<pb::GetAppointmentRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        self.get_impl(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn cancel(&self, request: Request<pb::CancelRequest>) -> Result<Response<pb::Booking>, Status> {
        self.cancel_impl(request.into_inner()).await.map(|b| self.seen(b)).map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(centres = request.get_ref().centre_ids.len()))]
    async fn availability_summary(
        &self,
        request: Request<pb::AvailabilitySummaryRequest>,
    ) -> Result<Response<pb::AvailabilitySummaryResponse>, Status> {
        self.availability_impl(request.into_inner()).await.map(Response::new)
    }

    type WatchAvailabilityStream = tokio_stream::wrappers::ReceiverStream<Result<pb::AvailabilityUpdate, Status>>;

    #[tracing::instrument(skip_all)]
    async fn watch_availability(
        &self,
        request: Request<pb::WatchAvailabilityRequest>,
    ) -> Result<Response<Self::WatchAvailabilityStream>, Status> {
        let r = request.into_inner();
        let updates = self.availability.subscribe(&r.epoch, r.after)?;
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(updates)))
    }

    #[tracing::instrument(skip_all, fields(slot_id = %request.get_ref().slot_id))]
    async fn hold(&self, request: Request<pb::HoldRequest>) -> Result<Response<pb::SlotHold>, Status> {
        self.hold_impl(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        self.release_hold_impl(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn reschedule(&self, request: Request<pb::RescheduleRequest>) -> Result<Response<pb::Booking>, Status> {
        self.reschedule_impl(request.into_inner()).await.map(|b| self.seen(b)).map(Response::new)
    }

    async fn list_vaccines(
        &self,
        _request: Request<pb::ListVaccinesRequest>,
    ) -> Result<Response<pb::ListVaccinesResponse>, Status> {
        let vaccines = storage::all_vaccines(&self.db).await.map_err(db_status)?;
        Ok(Response::new(pb::ListVaccinesResponse {
            vaccines: vaccines
                .into_iter()
                .map(|v| pb::VaccineRules {
                    code: v.code,
                    label: v.label,
                    doses: v.doses,
                    min_interval_days: v.min_interval_days,
                    max_interval_days: v.max_interval_days,
                    booster_min_delay_days: v.booster_min_delay_days,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(centre_id = %request.get_ref().centre_id))]
    async fn create_slots(
        &self,
        request: Request<pb::CreateSlotsRequest>,
    ) -> Result<Response<pb::CreateSlotsResponse>, Status> {
        self.create_slots_impl(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(centre_id = %request.get_ref().centre_id))]
    async fn create_schedule(
        &self,
        request: Request<pb::CreateScheduleRequest>,
    ) -> Result<Response<pb::CreateScheduleResponse>, Status> {
        self.create_schedule_impl(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(slots = request.get_ref().slot_ids.len()))]
    async fn close_slots(
        &self,
        request: Request<pb::CloseSlotsRequest>,
    ) -> Result<Response<pb::CloseSlotsResponse>, Status> {
        let ids = request
            .into_inner()
            .slot_ids
            .iter()
            .map(|id| Id::parse(id, "slot_ids").map(Id::into_string))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let closed = storage::close_slots(&self.db, &ids).await.map_err(db_status)?;
        Ok(Response::new(pb::CloseSlotsResponse { closed: closed as u32 }))
    }

    #[tracing::instrument(skip_all, fields(centre_id = %request.get_ref().centre_id))]
    async fn cancel_session(
        &self,
        request: Request<pb::CancelSessionRequest>,
    ) -> Result<Response<pb::CancelSessionResponse>, Status> {
        self.cancel_session_impl(request.into_inner()).await.map(Response::new)
    }
}
