//! The waiting room's public face: a challenge to solve, joining, asking
//! where one stands; and the pass every funnel call needs while the room
//! is on. None of it calls a backend or the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::extract::Json;
use crate::problem::{Problem, ProblemKind};
use crate::queue::live::{QueueError, Room, Status};
use crate::queue::pow::PowError;
use crate::queue::tokens::TokenError;

pub const PASS_HEADER: &str = "x-creneau-pass";
const PASS_COOKIE: &str = "creneau_pass";
const QUEUE: &str = "/api/v1/queue";

impl From<QueueError> for Problem {
    fn from(error: QueueError) -> Self {
        let detail = error.to_string();
        match error {
            QueueError::Token(TokenError::Expired(_)) => Problem::new(ProblemKind::TicketExpired, detail),
            QueueError::Token(TokenError::Seal(_)) => {
                Problem::new(ProblemKind::Unauthorized, "this ticket is not valid")
            }
            QueueError::Pow(PowError::Seal(_)) => Problem::new(ProblemKind::ProofOfWork, "this challenge is not valid"),
            QueueError::Pow(_) => Problem::new(ProblemKind::ProofOfWork, detail),
            QueueError::UnknownPostcode(_) => Problem::validation(detail),
            QueueError::TooManyJoins => Problem::new(ProblemKind::TooManyRequests, detail).retry_after(60),
        }
    }
}

fn rfc3339(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[derive(Serialize)]
pub struct Challenge {
    challenge: String,
    /// Leading zero bits SHA-256(challenge ‖ solution as 8 bytes little-endian) must have.
    difficulty: u8,
}

pub async fn challenge(State(room): State<Arc<Room>>) -> axum::Json<Challenge> {
    let (challenge, difficulty) = room.challenge(Utc::now());
    axum::Json(Challenge { challenge, difficulty })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    postcode: String,
    challenge: String,
    solution: u64,
}

#[derive(Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Answer {
    Waiting {
        /// Show this ticket from now on: it remembers what was shown.
        ticket: String,
        position: u64,
        ahead: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        estimated_wait_s: Option<u64>,
        places_left: u32,
        refresh_after_s: u64,
    },
    Admitted {
        pass: String,
        pass_expires_at: Option<String>,
    },
    SoldOut {
        #[serde(skip_serializing_if = "Option::is_none")]
        next_publication: Option<String>,
    },
}

fn answer(status: Status, ticket: Option<String>) -> (HeaderMap, Answer) {
    let mut headers = HeaderMap::new();
    let answer = match status {
        Status::Waiting { ahead, wait_s, places_left, refresh_after_s, ticket: renewed } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(refresh_after_s));
            Answer::Waiting {
                ticket: ticket.unwrap_or(renewed),
                position: ahead + 1,
                ahead,
                estimated_wait_s: wait_s,
                places_left,
                refresh_after_s,
            }
        }
        Status::Admitted { pass, pass_expires_ms } => {
            if let Ok(cookie) = HeaderValue::from_str(&pass_cookie(&pass)) {
                headers.insert(header::SET_COOKIE, cookie);
            }
            Answer::Admitted { pass, pass_expires_at: rfc3339(pass_expires_ms) }
        }
        Status::SoldOut { next_publication_ms } => {
            Answer::SoldOut { next_publication: next_publication_ms.and_then(rfc3339) }
        }
    };
    (headers, answer)
}

fn pass_cookie(pass: &str) -> String {
    format!("{PASS_COOKIE}={pass}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

#[derive(Serialize)]
pub struct Overview {
    /// When the board was published; none before the first.
    as_of: Option<String>,
    waiting: u64,
    admitted: u64,
    /// Admissions a second the room aims at now, and the pace measured.
    admission_rate_per_s: f64,
    pace_per_s: Option<f64>,
    paused: bool,
    difficulty: u8,
    departments: Vec<Line>,
}

#[derive(Serialize)]
pub struct Line {
    department: String,
    places_left: u32,
    waiting: u64,
    sold_out: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_publication: Option<String>,
}

/// `GET /api/v1/queue`: the room as every waiting citizen sees it, kept by
/// caches for a second.
pub async fn overview(
    State(room): State<Arc<Room>>,
) -> ([(header::HeaderName, &'static str); 1], axum::Json<Overview>) {
    let published = room.published();
    let board = &published.board;
    let departments = board
        .departments
        .iter()
        .map(|(department, line)| Line {
            department: department.clone(),
            places_left: line.places_left,
            waiting: line.waiting.iter().map(|(_, n)| u64::from(*n)).sum(),
            sold_out: line.places_left == 0 && !board.opening_soon(line),
            next_publication: line.next_publication_ms.and_then(rfc3339),
        })
        .collect();
    let overview = Overview {
        as_of: (board.at_ms > 0).then(|| rfc3339(board.at_ms)).flatten(),
        waiting: published.total_waiting(),
        admitted: board.admitted,
        admission_rate_per_s: board.rate,
        pace_per_s: board.pace,
        paused: board.paused,
        difficulty: room.difficulty(),
        departments,
    };
    ([(header::CACHE_CONTROL, "public, max-age=1")], axum::Json(overview))
}

/// `POST /api/v1/queue`: 202 with the ticket and where it stands.
pub async fn join(
    State(room): State<Arc<Room>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<JoinBody>,
) -> Result<(StatusCode, HeaderMap, axum::Json<Answer>), Problem> {
    let joined = room.join(&body.postcode, &body.challenge, body.solution, Some(peer.ip()), Utc::now())?;
    let (headers, answer) = answer(joined.status, Some(joined.ticket));
    Ok((StatusCode::ACCEPTED, headers, axum::Json(answer)))
}

/// `GET /api/v1/queue/status` with `Authorization: Bearer <ticket>`.
pub async fn status(
    State(room): State<Arc<Room>>,
    headers: HeaderMap,
) -> Result<(HeaderMap, axum::Json<Answer>), Problem> {
    let ticket = super::bearer(&headers, "the ticket")?;
    let (headers, answer) = answer(room.status(&ticket, Utc::now())?, None);
    Ok((headers, axum::Json(answer)))
}

fn presented_pass(headers: &HeaderMap) -> Option<&str> {
    headers.get(PASS_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(PASS_COOKIE)?.strip_prefix('='))
    })
}

/// Lets a request into the funnel only with a valid pass; renews the pass
/// past half its life (a header and a cookie carry the renewed one).
pub async fn require_pass(State(room): State<Arc<Room>>, mut request: Request, next: Next) -> Response {
    let checked = match presented_pass(request.headers()) {
        None => Err("the waiting room is open: join it to get a pass".to_owned()),
        Some(token) => room.check_pass(token, Utc::now()).map_err(|e| match e {
            TokenError::Expired(_) => "this pass has expired: join the waiting room again".to_owned(),
            TokenError::Seal(_) => "this pass is not valid: join the waiting room to get one".to_owned(),
        }),
    };
    let (pass, renewed) = match checked {
        Ok(checked) => checked,
        Err(detail) => {
            let mut problem = Problem::new(ProblemKind::QueueRequired, detail);
            problem.queue = Some(QUEUE);
            return problem.into_response();
        }
    };
    request.extensions_mut().insert(pass);
    let mut response = next.run(request).await;
    if let Some(renewed) = renewed {
        let headers = response.headers_mut();
        if let (Ok(value), Ok(cookie)) =
            (HeaderValue::from_str(&renewed), HeaderValue::from_str(&pass_cookie(&renewed)))
        {
            headers.insert(PASS_HEADER, value);
            headers.append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// What the room's closed loop reads: every funnel call's outcome, holds'
/// and bookings' latency, calls in flight. Outside the load shedding, so
/// that its refusals count.
pub async fn meter(State(room): State<Arc<Room>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/api/v1/") || path.starts_with("/api/v1/queue") || path.starts_with("/api/v1/open-data") {
        return next.run(request).await;
    }
    let booking = request.method() == Method::POST && (path == "/api/v1/holds" || path == "/api/v1/bookings");
    let _in_flight = room.meter.start();
    let started = Instant::now();
    let response = next.run(request).await;
    room.meter.record(response.status().as_u16(), started.elapsed(), booking);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_read_from_its_header_or_its_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_pass(&headers), None);
        headers.insert(header::COOKIE, HeaderValue::from_static("lang=fr; creneau_pass=abc.def"));
        assert_eq!(presented_pass(&headers), Some("abc.def"));
        headers.insert(PASS_HEADER, HeaderValue::from_static(" xyz "));
        assert_eq!(presented_pass(&headers), Some("xyz"));
    }
}
