//! Public HTTP API v1. Handlers are thin: parse HTTP, call a backend,
//! shape JSON. Rules live in the services.

pub mod bookings;
pub mod centres;
pub mod eligibility;
pub mod health;
pub mod home;

use axum::http::HeaderMap;

/// "fr" unless the client prefers English.
pub fn language(headers: &HeaderMap) -> &'static str {
    let preferred = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .unwrap_or("");
    if preferred.trim().to_ascii_lowercase().starts_with("en") { "en" } else { "fr" }
}
