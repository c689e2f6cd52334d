use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use creneau_proto::slot_inventory::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::extract::Json;
use crate::problem::{Problem, ProblemKind};
use crate::queue::tokens::Pass;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct CitizenBody {
    first_name: String,
    last_name: String,
    birth_date: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

#[derive(Deserialize)]
pub struct BookingBody {
    /// The (first) dose's slot, or a `hold_id` instead.
    #[serde(default)]
    slot_id: Option<String>,
    #[serde(default)]
    hold_id: Option<String>,
    /// The second dose's slot; by default the earliest inside the interval.
    #[serde(default)]
    second_slot_id: Option<String>,
    /// 1 (default) or 3 for a booster, with `last_dose_date`.
    #[serde(default)]
    dose: Option<u32>,
    #[serde(default)]
    last_dose_date: Option<String>,
    attestation: String,
    citizen: CitizenBody,
    /// Language of messages; defaults to `Accept-Language`.
    #[serde(default)]
    language: Option<String>,
}

#[derive(Deserialize)]
pub struct RescheduleBody {
    /// Which appointment moves: 1 (default; its second dose follows when
    /// needed), 2 or 3.
    #[serde(default)]
    dose: Option<u32>,
    slot_id: String,
    #[serde(default)]
    second_slot_id: Option<String>,
}

#[derive(Serialize)]
pub struct Appointment {
    dose: u32,
    slot_id: String,
    centre_id: String,
    vaccine: String,
    starts_at: String,
    ends_at: String,
}

#[derive(Serialize)]
pub struct Booking {
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    status: String,
    appointments: Vec<Appointment>,
}

impl From<pb::Booking> for Booking {
    fn from(b: pb::Booking) -> Self {
        Self {
            reference: b.reference,
            secret: b.secret,
            status: b.status,
            appointments: b
                .appointments
                .into_iter()
                .map(|a| Appointment {
                    dose: a.dose,
                    slot_id: a.slot_id,
                    centre_id: a.centre_id,
                    vaccine: a.vaccine,
                    starts_at: a.starts_at,
                    ends_at: a.ends_at,
                })
                .collect(),
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    pass: Option<axum::Extension<Pass>>,
    headers: HeaderMap,
    Json(body): Json<BookingBody>,
) -> Result<(StatusCode, axum::Json<Booking>), Problem> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            Problem::validation("the Idempotency-Key header is required").with_status(StatusCode::BAD_REQUEST)
        })?
        .to_str()
        .map_err(|_| {
            Problem::validation("Idempotency-Key must be printable ASCII").with_status(StatusCode::BAD_REQUEST)
        })?
        .to_owned();
    // One pass, one booking, on every replica: the pass's ticket is the
    // key, so a second booking with it is a different request on a used
    // key (refused), and a retry of the first replays it.
    let by_pass = pass.is_some();
    let key = match pass {
        Some(axum::Extension(pass)) => format!("pass-{}", pass.ticket),
        None => key,
    };
    let language = body.language.unwrap_or_else(|| super::language(&headers).to_owned());
    let request = state.backends.request(pb::BookRequest {
        slot_id: body.slot_id.unwrap_or_default(),
        hold_id: body.hold_id,
        second_slot_id: body.second_slot_id,
        dose: body.dose.unwrap_or(1),
        last_dose_date: body.last_dose_date,
        citizen: Some(pb::Citizen {
            first_name: body.citizen.first_name,
            last_name: body.citizen.last_name,
            birth_date: body.citizen.birth_date,
            email: body.citizen.email,
            phone: body.citizen.phone,
            language,
        }),
        attestation: body.attestation,
        idempotency_key: key,
    });
    let booking = match state.backends.slots.clone().book(request).await {
        Ok(booking) => booking.into_inner(),
        Err(status) => {
            let problem = Problem::from(status);
            if by_pass && problem.kind == ProblemKind::IdempotencyConflict {
                return Err(Problem::new(ProblemKind::IdempotencyConflict, "this pass has already made a booking"));
            }
            return Err(problem);
        }
    };
    let status = if booking.replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(booking.into())))
}

#[tracing::instrument(skip_all)]
pub async fn get(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<Booking>, Problem> {
    let secret = super::bearer(&headers, "the booking secret")?;
    let request = state.backends.request(pb::GetAppointmentRequest { reference, secret });
    let booking = state.backends.slots.clone().get_appointment(request).await?.into_inner();
    Ok(axum::Json(booking.into()))
}

#[derive(Serialize)]
pub struct Cancelled {
    reference: String,
    status: String,
}

#[tracing::instrument(skip_all)]
pub async fn cancel(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<Cancelled>, Problem> {
    let secret = super::bearer(&headers, "the booking secret")?;
    let request = state.backends.request(pb::CancelRequest { reference, secret });
    let booking = state.backends.slots.clone().cancel(request).await?.into_inner();
    Ok(axum::Json(Cancelled { reference: booking.reference, status: booking.status }))
}

#[tracing::instrument(skip_all)]
pub async fn reschedule(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Json(body): Json<RescheduleBody>,
) -> Result<axum::Json<Booking>, Problem> {
    let secret = super::bearer(&headers, "the booking secret")?;
    let request = state.backends.request(pb::RescheduleRequest {
        reference,
        secret,
        dose: body.dose.unwrap_or(1),
        slot_id: body.slot_id,
        second_slot_id: body.second_slot_id,
    });
    let booking = state.backends.slots.clone().reschedule(request).await?.into_inner();
    Ok(axum::Json(booking.into()))
}
