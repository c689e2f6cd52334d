//! Machine-readable error reasons carried across gRPC in the standard
//! `google.rpc.ErrorInfo` detail, so callers (the gateway, phone agents'
//! tools) branch on a stable reason rather than on message text.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub const DOMAIN: &str = "creneau";

/// Stable reasons shared by services and the gateway.
pub mod reason {
    pub const VALIDATION: &str = "VALIDATION";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const SLOT_FULL: &str = "SLOT_FULL";
    pub const ALREADY_BOOKED: &str = "ALREADY_BOOKED";
    pub const NOT_ELIGIBLE: &str = "NOT_ELIGIBLE";
    pub const INVALID_ATTESTATION: &str = "INVALID_ATTESTATION";
    pub const IDEMPOTENCY_CONFLICT: &str = "IDEMPOTENCY_CONFLICT";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const NO_SECOND_DOSE_SLOT: &str = "NO_SECOND_DOSE_SLOT";
    pub const HOLD_EXPIRED: &str = "HOLD_EXPIRED";
}

/// A status with an `ErrorInfo` detail naming `reason`.
pub fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, DOMAIN, HashMap::<String, String>::new()),
    )
}

pub fn invalid_argument(message: impl Into<String>) -> Status {
    status(Code::InvalidArgument, reason::VALIDATION, message)
}

pub fn not_found(message: impl Into<String>) -> Status {
    status(Code::NotFound, reason::NOT_FOUND, message)
}

/// Storage and other failures the caller cannot fix: logged here with the
/// cause, reported without it.
pub fn internal(error: &dyn std::fmt::Display) -> Status {
    tracing::error!(%error, "internal error");
    status(Code::Internal, "INTERNAL", "internal error")
}

/// The `ErrorInfo` reason of a status from a Créneau service, if any.
pub fn reason_of(status: &Status) -> Option<String> {
    status.get_details_error_info().filter(|info| info.domain == DOMAIN).map(|info| info.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_survives_the_wire_encoding() {
        let sent = status(Code::FailedPrecondition, reason::SLOT_FULL, "full");
        let response = sent.into_http::<()>();
        let received = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(reason_of(&received).as_deref(), Some(reason::SLOT_FULL));
        assert_eq!(received.code(), Code::FailedPrecondition);
    }
}
