use axum::extract::State;
use axum::http::HeaderMap;
use creneau_proto::eligibility::v1::CheckRequest;
use serde::{Deserialize, Serialize};

use crate::extract::Json;
use crate::problem::Problem;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct EligibilityRequest {
    birth_date: String,
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    profession: Option<String>,
    /// 1 (default) or 3 for a booster, with `last_dose_date`.
    #[serde(default)]
    dose: Option<u32>,
    #[serde(default)]
    last_dose_date: Option<String>,
}

#[derive(Serialize)]
pub struct EligibilityResponse {
    eligible: bool,
    reason: String,
    eligible_from: Option<String>,
    attestation: Option<String>,
    attestation_expires_at: Option<String>,
}

// The body is personal data: nothing of it is recorded.
#[tracing::instrument(skip_all)]
pub async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<EligibilityRequest>,
) -> Result<axum::Json<EligibilityResponse>, Problem> {
    let request = state.backends.request(CheckRequest {
        birth_date: body.birth_date,
        conditions: body.conditions,
        profession: body.profession,
        as_of: None,
        language: super::language(&headers).to_owned(),
        dose: body.dose,
        last_dose_date: body.last_dose_date,
    });
    let r = state.backends.eligibility.clone().check(request).await?.into_inner();
    Ok(axum::Json(EligibilityResponse {
        eligible: r.eligible,
        reason: r.reason,
        eligible_from: r.eligible_from,
        attestation: r.attestation,
        attestation_expires_at: r.attestation_expires_at,
    }))
}
