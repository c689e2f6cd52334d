//! Public HTTP API v1. Handlers are thin: parse HTTP, call a backend,
//! shape JSON. Rules live in the services.

pub mod bookings;
pub mod centres;
pub mod eligibility;
pub mod health;
pub mod holds;
pub mod home;
pub mod open_data;
pub mod queue;

use axum::http::{HeaderMap, header};

use crate::problem::{Problem, ProblemKind};

/// "fr" unless the client prefers English.
pub fn language(headers: &HeaderMap) -> &'static str {
    let preferred = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .unwrap_or("");
    if preferred.trim().to_ascii_lowercase().starts_with("en") { "en" } else { "fr" }
}

/// The bearer token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap, what: &str) -> Result<String, Problem> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Problem::new(ProblemKind::Unauthorized, format!("send {what} as Authorization: Bearer <token>")))
}
