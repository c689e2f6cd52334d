use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::startup::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize)]
pub struct Readiness {
    ready: bool,
    backends: BTreeMap<&'static str, &'static str>,
}

/// Readiness: the gateway can take requests. It does not chain to the
/// backends: one saturated or restarting backend must not take every
/// gateway out of rotation (the gateway then answers 503 for what needs
/// that backend, and everything else still works). The backends' health
/// is reported alongside, for people.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Readiness>) {
    let checks = state.backends.health.iter().map(|(name, client)| {
        let mut client = client.clone();
        async move {
            let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
            request.set_timeout(CHECK_TIMEOUT);
            let status = match client.check(request).await {
                Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => "serving",
                Ok(_) => "not-serving",
                Err(_) => "unreachable",
            };
            (*name, status)
        }
    });
    let backends: BTreeMap<_, _> = futures::future::join_all(checks).await.into_iter().collect();
    (StatusCode::OK, axum::Json(Readiness { ready: true, backends }))
}
