//! Every error the public API returns: RFC 9457 problem details, mapped
//! once from backend statuses and request rejections.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use creneau_kit::errors::{self, reason};
use serde::Serialize;
use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Validation,
    NotFound,
    SlotFull,
    AlreadyBooked,
    NotEligible,
    InvalidAttestation,
    IdempotencyConflict,
    Unauthorized,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unavailable,
    Timeout,
    Internal,
    HoldExpired,
    NoSecondDoseSlot,
    /// The waiting room is on and the request has no valid pass.
    QueueRequired,
    TicketExpired,
    ProofOfWork,
    TooManyRequests,
}

impl ProblemKind {
    fn slug(self) -> &'static str {
        match self {
            ProblemKind::Validation => "validation",
            ProblemKind::NotFound => "not-found",
            ProblemKind::SlotFull => "slot-full",
            ProblemKind::AlreadyBooked => "already-booked",
            ProblemKind::NotEligible => "not-eligible",
            ProblemKind::InvalidAttestation => "invalid-attestation",
            ProblemKind::IdempotencyConflict => "idempotency-conflict",
            ProblemKind::Unauthorized => "unauthorized",
            ProblemKind::PayloadTooLarge => "payload-too-large",
            ProblemKind::UnsupportedMediaType => "unsupported-media-type",
            ProblemKind::Unavailable => "unavailable",
            ProblemKind::Timeout => "timeout",
            ProblemKind::Internal => "internal",
            ProblemKind::HoldExpired => "hold-expired",
            ProblemKind::NoSecondDoseSlot => "no-second-dose-slot",
            ProblemKind::QueueRequired => "queue-required",
            ProblemKind::TicketExpired => "ticket-expired",
            ProblemKind::ProofOfWork => "proof-of-work",
            ProblemKind::TooManyRequests => "too-many-requests",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ProblemKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::NotFound => StatusCode::NOT_FOUND,
            ProblemKind::SlotFull
            | ProblemKind::AlreadyBooked
            | ProblemKind::IdempotencyConflict
            | ProblemKind::HoldExpired
            | ProblemKind::NoSecondDoseSlot => StatusCode::CONFLICT,
            ProblemKind::NotEligible | ProblemKind::InvalidAttestation => StatusCode::FORBIDDEN,
            ProblemKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ProblemKind::QueueRequired | ProblemKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ProblemKind::TicketExpired => StatusCode::GONE,
            ProblemKind::ProofOfWork => StatusCode::BAD_REQUEST,
        }
    }

    fn title(self) -> &'static str {
        match self {
            ProblemKind::Validation => "The request is not valid",
            ProblemKind::NotFound => "Not found",
            ProblemKind::SlotFull => "This slot is full",
            ProblemKind::AlreadyBooked => "This person already has a booking",
            ProblemKind::NotEligible => "Not eligible",
            ProblemKind::InvalidAttestation => "Invalid eligibility attestation",
            ProblemKind::IdempotencyConflict => "Idempotency key reused with a different request",
            ProblemKind::Unauthorized => "Credentials required",
            ProblemKind::PayloadTooLarge => "Request body too large",
            ProblemKind::UnsupportedMediaType => "Unsupported media type",
            ProblemKind::Unavailable => "Service temporarily unavailable",
            ProblemKind::Timeout => "The request took too long",
            ProblemKind::Internal => "Internal error",
            ProblemKind::HoldExpired => "This hold has expired or was released",
            ProblemKind::NoSecondDoseSlot => "No slot left for the second dose",
            ProblemKind::QueueRequired => "Join the waiting room first",
            ProblemKind::TicketExpired => "This ticket has expired",
            ProblemKind::ProofOfWork => "The proof of work does not hold",
            ProblemKind::TooManyRequests => "Too many requests",
        }
    }
}

#[derive(Debug)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    /// Overrides the kind's status where HTTP needs another (400 for a
    /// missing header).
    pub status: Option<StatusCode>,
    /// Seconds, for `Retry-After`, where the kind's default is not right.
    pub retry_after: Option<u64>,
    /// Where to go instead (a `queue` member of the body).
    pub queue: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<&'a str>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), status: None, retry_after: None, queue: None }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Validation, detail)
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| self.kind.status());
        let body = Body {
            kind: format!("/problems/{}", self.kind.slug()),
            title: self.kind.title(),
            status: status.as_u16(),
            detail: &self.detail,
            queue: self.queue,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match (self.kind, self.retry_after) {
            (_, Some(seconds)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            (ProblemKind::Unavailable | ProblemKind::Timeout, None) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            (ProblemKind::Unauthorized, None) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<tonic::Status> for Problem {
    fn from(status: tonic::Status) -> Self {
        let detail = status.message().to_owned();
        let kind = match errors::reason_of(&status).as_deref() {
            Some(reason::VALIDATION) => ProblemKind::Validation,
            Some(reason::NOT_FOUND) => ProblemKind::NotFound,
            Some(reason::SLOT_FULL) => ProblemKind::SlotFull,
            Some(reason::ALREADY_BOOKED) => ProblemKind::AlreadyBooked,
            Some(reason::NOT_ELIGIBLE) => ProblemKind::NotEligible,
            Some(reason::INVALID_ATTESTATION) => ProblemKind::InvalidAttestation,
            Some(reason::IDEMPOTENCY_CONFLICT) => ProblemKind::IdempotencyConflict,
            Some(reason::HOLD_EXPIRED) => ProblemKind::HoldExpired,
            Some(reason::NO_SECOND_DOSE_SLOT) => ProblemKind::NoSecondDoseSlot,
            Some(reason::UNAVAILABLE) => ProblemKind::Unavailable,
            _ => match status.code() {
                Code::InvalidArgument => ProblemKind::Validation,
                Code::NotFound => ProblemKind::NotFound,
                Code::DeadlineExceeded => ProblemKind::Timeout,
                Code::Unavailable | Code::ResourceExhausted | Code::Cancelled | Code::Aborted => {
                    ProblemKind::Unavailable
                }
                // No status from the service at all: the connection to it
                // broke (tonic says Unknown and keeps the cause). Retryable.
                Code::Unknown if std::error::Error::source(&status).is_some() => ProblemKind::Unavailable,
                _ => ProblemKind::Internal,
            },
        };
        if kind == ProblemKind::Internal {
            tracing::error!(code = ?status.code(), message = %status.message(), "backend error");
            return Problem::new(kind, "an internal error occurred");
        }
        if matches!(kind, ProblemKind::Unavailable | ProblemKind::Timeout) {
            tracing::warn!(code = ?status.code(), message = %status.message(), "backend unavailable");
            return Problem::new(kind, "please retry in a moment");
        }
        Problem::new(kind, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_to_problem_types() {
        let p = Problem::from(errors::status(Code::FailedPrecondition, reason::SLOT_FULL, "full"));
        assert_eq!(p.kind, ProblemKind::SlotFull);
        let p = Problem::from(tonic::Status::unavailable("down"));
        assert_eq!(p.kind, ProblemKind::Unavailable);
        let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let p = Problem::from(tonic::Status::from_error(Box::new(broken)));
        assert_eq!(p.kind, ProblemKind::Unavailable, "a broken connection is worth a retry");
        let p = Problem::from(tonic::Status::unknown("the service said so"));
        assert_eq!(p.kind, ProblemKind::Internal);
        let p = Problem::from(tonic::Status::internal("secret detail"));
        assert_eq!(p.kind, ProblemKind::Internal);
        assert!(!p.detail.contains("secret"));
    }
}
