use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use creneau_proto::slot_inventory::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::extract::Json;
use crate::problem::{Problem, ProblemKind};
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
    slot_id: String,
    attestation: String,
    citizen: CitizenBody,
    /// Language of messages; defaults to `Accept-Language`.
    #[serde(default)]
    language: Option<String>,
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
    let language = body.language.unwrap_or_else(|| super::language(&headers).to_owned());
    let request = state.backends.request(pb::BookRequest {
        slot_id: body.slot_id,
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
    let booking = state.backends.slots.clone().book(request).await?.into_inner();
    let status = if booking.replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, axum::Json(booking.into())))
}

fn bearer(headers: &HeaderMap) -> Result<String, Problem> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Problem::new(ProblemKind::Unauthorized, "send the booking secret as Authorization: Bearer <secret>")
        })
}

#[tracing::instrument(skip_all)]
pub async fn get(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<Booking>, Problem> {
    let secret = bearer(&headers)?;
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
    let secret = bearer(&headers)?;
    let request = state.backends.request(pb::CancelRequest { reference, secret });
    let booking = state.backends.slots.clone().cancel(request).await?.into_inner();
    Ok(axum::Json(Cancelled { reference: booking.reference, status: booking.status }))
}
