//! What the load generator saw: one sample per request, one record per
//! citizen, and live counters for the progress line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Endpoint {
    Eligibility,
    Search,
    Centre,
    Slots,
    Hold,
    Book,
    Cancel,
    /// The challenge and the join: the waiting room's door.
    QueueJoin,
    /// Asking where one stands: answered from memory.
    QueueStatus,
}

impl Endpoint {
    pub const ALL: [Endpoint; 9] = [
        Endpoint::QueueJoin,
        Endpoint::QueueStatus,
        Endpoint::Eligibility,
        Endpoint::Search,
        Endpoint::Centre,
        Endpoint::Slots,
        Endpoint::Hold,
        Endpoint::Book,
        Endpoint::Cancel,
    ];

    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Eligibility => "POST /api/v1/eligibility",
            Endpoint::Search => "GET /api/v1/centres",
            Endpoint::Centre => "GET /api/v1/centres/{id}",
            Endpoint::Slots => "GET /api/v1/centres/{id}/slots",
            Endpoint::Hold => "POST /api/v1/holds",
            Endpoint::Book => "POST /api/v1/bookings",
            Endpoint::Cancel => "DELETE /api/v1/bookings/{ref}",
            Endpoint::QueueJoin => "POST /api/v1/queue",
            Endpoint::QueueStatus => "GET /api/v1/queue/status",
        }
    }
}

/// How a request ended, as the citizen's browser saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Status(u16),
    /// No answer within the request deadline.
    Timeout,
    /// Connection refused or reset: no HTTP answer at all.
    Failed,
    /// The deadline passed while every one of the generator's connections
    /// was busy: the generator, not the platform, was the limit.
    NotSent,
}

impl Outcome {
    /// A failure the citizen can only retry: 5xx, timeout, broken connection.
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Status(s) if s < 500)
    }

    pub fn label(self) -> String {
        match self {
            Outcome::Status(s) => s.to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Failed => "conn-error".into(),
            Outcome::NotSent => "not-sent".into(),
        }
    }
}

/// Problem types a 4xx may carry, named once so samples stay small.
const PROBLEMS: [&str; 14] = [
    "queue-required",
    "ticket-expired",
    "proof-of-work",
    "too-many-requests",
    "slot-full",
    "hold-expired",
    "no-second-dose-slot",
    "already-booked",
    "idempotency-conflict",
    "validation",
    "not-found",
    "not-eligible",
    "invalid-attestation",
    "unauthorized",
];

/// The known problem type named by a problem+json `type` URI.
pub fn problem_of(type_uri: &str) -> Option<&'static str> {
    let slug = type_uri.rsplit('/').next()?;
    PROBLEMS.iter().find(|p| **p == slug).copied().or(Some("other"))
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub endpoint: Endpoint,
    pub outcome: Outcome,
    /// A 4xx answer's problem type.
    pub problem: Option<&'static str>,
    /// When the answer came, ms since the run started.
    pub done_ms: u32,
    pub latency_us: u32,
    /// Of which waiting for one of the generator's connections.
    pub queued_us: u32,
}

/// How a citizen's morning ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fate {
    Booked,
    /// Searches after the opening offered nothing: a clear "none left".
    NoSlotLeft,
    /// Lost the race for every place tried, `attempts` times.
    GaveUpRaces,
    /// Patience ran out while pages still answered.
    GaveUpWaiting,
    /// Patience ran out on errors and timeouts: no answer at all.
    NoAnswer,
    /// Told by the waiting room that their département sold out.
    SoldOutInQueue,
    /// Left the waiting room before their turn.
    LeftQueue,
}

impl Fate {
    pub const ALL: [Fate; 7] = [
        Fate::Booked,
        Fate::NoSlotLeft,
        Fate::SoldOutInQueue,
        Fate::GaveUpRaces,
        Fate::GaveUpWaiting,
        Fate::LeftQueue,
        Fate::NoAnswer,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Fate::Booked => "booked",
            Fate::NoSlotLeft => "told none left",
            Fate::GaveUpRaces => "gave up (lost races)",
            Fate::GaveUpWaiting => "gave up (waited too long)",
            Fate::NoAnswer => "no answer (errors, timeouts)",
            Fate::SoldOutInQueue => "told sold out while waiting",
            Fate::LeftQueue => "left the waiting room",
        }
    }

    /// Booked, or told plainly there is nothing left.
    pub fn is_definite(self) -> bool {
        matches!(self, Fate::Booked | Fate::NoSlotLeft | Fate::SoldOutInQueue)
    }
}

impl Sample {
    /// `201`, `409 slot-full`, `timeout`…
    pub fn label(&self) -> String {
        match self.problem {
            Some(problem) => format!("{} {problem}", self.outcome.label()),
            None => self.outcome.label(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CitizenRecord {
    /// Where they searched from (lat, lon).
    pub home: (f64, f64),
    pub arrived_ms: u32,
    pub ended_ms: u32,
    pub fate: Fate,
    /// When the booking was acknowledged.
    pub booked_ms: Option<u32>,
    pub reference: Option<String>,
    pub cancelled: bool,
    /// A cancellation was sent but its answer never came.
    pub cancel_unanswered: bool,
    /// Their time in the waiting room, when it was on.
    pub queue: Option<Queued>,
}

/// A citizen's time in the waiting room, ms since the run started.
#[derive(Debug, Clone, Default)]
pub struct Queued {
    pub department: &'static str,
    /// When the join was answered.
    pub joined_ms: u32,
    pub admitted_ms: Option<u32>,
    pub sold_out_ms: Option<u32>,
    /// The last status that said "waiting".
    pub last_waiting_ms: Option<u32>,
    /// (when, estimated seconds left) as each status said.
    pub estimates: Vec<(u32, u32)>,
}

/// Counters read by the progress line while the run goes on.
#[derive(Default)]
pub struct Live {
    pub arrived: AtomicU64,
    pub finished: AtomicU64,
    pub booked: AtomicU64,
    pub requests: AtomicU64,
    pub server_errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub not_sent: AtomicU64,
    pub unexpected: AtomicU64,
}

impl Live {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
