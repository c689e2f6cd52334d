use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use creneau_proto::slot_inventory::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::extract::Json;
use crate::problem::Problem;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct HoldBody {
    slot_id: String,
    /// The holder: the same attestation books the held place.
    attestation: String,
}

#[derive(Serialize)]
pub struct Hold {
    hold_id: String,
    slot_id: String,
    expires_at: String,
}

#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<HoldBody>,
) -> Result<(StatusCode, axum::Json<Hold>), Problem> {
    let request = state.backends.request(pb::HoldRequest { slot_id: body.slot_id, attestation: body.attestation });
    let held = state.backends.slots.clone().hold(request).await?.into_inner();
    Ok((
        StatusCode::CREATED,
        axum::Json(Hold { hold_id: held.hold_id, slot_id: held.slot_id, expires_at: held.expires_at }),
    ))
}

/// `Authorization: Bearer <attestation>`: only the holder releases.
#[tracing::instrument(skip_all)]
pub async fn release(
    State(state): State<AppState>,
    Path(hold_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let attestation = super::bearer(&headers, "the attestation the hold was made with")?;
    let request = state.backends.request(pb::ReleaseHoldRequest { hold_id, attestation });
    state.backends.slots.clone().release_hold(request).await?;
    Ok(StatusCode::NO_CONTENT)
}
