//! Concurrency scenarios against a running slot-inventory: many clients
//! over gRPC at once, then every invariant checked in the database. The
//! rush suite runs each once on a fresh database; `creneau-bench soak`
//! runs them again and again until a million booking attempts have been
//! made. (Behind the `test-util` feature.)

mod crowds;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use chrono::Utc;
use creneau_kit::attestation::Signer;
use creneau_kit::errors::reason as r;
use creneau_proto::slot_inventory::v1::{self as pb, slot_inventory_client::SlotInventoryClient};
use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::transport::Channel;

pub use crowds::{
    cancellations_and_reschedules_interleaved, everyone_wants_the_earliest_slot, holds_expire_mid_run,
    retries_with_the_same_key, the_same_bookings_changed_at_once, uniform_demand,
};

use crate::invariants;

/// Clients per scenario.
pub const CLIENTS: usize = 1000;

/// A slot-inventory to drive: its API, its database (read for checks) and
/// the key its attestations are signed with.
#[derive(Clone)]
pub struct Target {
    pub client: SlotInventoryClient<Channel>,
    pub db: DatabaseConnection,
    pub signer: std::sync::Arc<Signer>,
}

impl Target {
    pub fn attestation(&self, birth_date: &str) -> String {
        self.attestation_for(birth_date, 1)
    }

    pub fn attestation_for(&self, birth_date: &str, dose: u32) -> String {
        let birth = birth_date.parse().expect("a birth date written YYYY-MM-DD");
        self.signer.sign(birth, dose, Utc::now(), chrono::Duration::minutes(30))
    }

    /// Publishes slots of `vaccine` at `centre`, one per offset in days from
    /// tomorrow 09:00 UTC; returns their ids in the same order.
    pub async fn days(&self, vaccine: &str, centre: &str, offsets: &[i64], capacity: u32) -> Vec<String> {
        let base = (Utc::now() + chrono::Duration::days(1)).date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
        let slots: Vec<pb::NewSlot> = offsets
            .iter()
            .map(|d| {
                let start = base + chrono::Duration::days(*d);
                pb::NewSlot {
                    vaccine: vaccine.into(),
                    starts_at: start.to_rfc3339(),
                    ends_at: (start + chrono::Duration::minutes(15)).to_rfc3339(),
                    capacity,
                }
            })
            .collect();
        let created = self
            .client
            .clone()
            .create_slots(pb::CreateSlotsRequest { centre_id: centre.into(), slots: slots.clone() })
            .await
            .expect("slots created")
            .into_inner();
        slots
            .iter()
            .map(|wanted| {
                let start = chrono::DateTime::parse_from_rfc3339(&wanted.starts_at).unwrap();
                let found =
                    created.slots.iter().find(|s| chrono::DateTime::parse_from_rfc3339(&s.starts_at).unwrap() == start);
                found.expect("every slot asked for was created").id.clone()
            })
            .collect()
    }

    /// Publishes one `vaccine` slot starting `hours` from now; returns its id.
    pub async fn slot_of(&self, vaccine: &str, centre: &str, hours: i64, capacity: u32) -> String {
        let start = Utc::now() + chrono::Duration::hours(hours);
        let created = self
            .client
            .clone()
            .create_slots(pb::CreateSlotsRequest {
                centre_id: centre.into(),
                slots: vec![pb::NewSlot {
                    vaccine: vaccine.into(),
                    starts_at: start.to_rfc3339(),
                    ends_at: (start + chrono::Duration::minutes(15)).to_rfc3339(),
                    capacity,
                }],
            })
            .await
            .expect("slot created")
            .into_inner();
        created.slots[0].id.clone()
    }

    pub fn request(&self, slot_id: &str, first: &str, last: &str, birth: &str, key: &str) -> pb::BookRequest {
        pb::BookRequest {
            slot_id: slot_id.into(),
            citizen: Some(pb::Citizen {
                first_name: first.into(),
                last_name: last.into(),
                birth_date: birth.into(),
                email: Some(format!("{}@example.fr", first.to_lowercase())),
                phone: None,
                language: "fr".into(),
            }),
            attestation: self.attestation(birth),
            idempotency_key: key.into(),
            ..Default::default()
        }
    }

    pub async fn book(&self, request: pb::BookRequest) -> Result<pb::Booking, tonic::Status> {
        self.client.clone().book(request).await.map(|r| r.into_inner())
    }

    /// One integer from the database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql.to_owned()))
            .await
            .expect("query runs")
            .expect("one row");
        // PostgreSQL types COUNT as int8 but a plain column as int4.
        row.try_get_by_index::<i64>(0).or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from)).expect("an integer")
    }
}

/// The machine-readable reason of a status from slot-inventory.
pub fn reason(status: &tonic::Status) -> String {
    creneau_kit::errors::reason_of(status).unwrap_or_default()
}

/// What the clients of one scenario did and were told.
#[derive(Default)]
pub struct Tally {
    pub attempts: AtomicU64,
    /// Distinct bookings clients were told about: a request that timed out
    /// after committing is learnt from its retry's replay.
    references: Mutex<HashSet<String>>,
    pub shed: AtomicU64,
    pub confirmed: AtomicU64,
    pub replayed: AtomicU64,
    pub conflicts: AtomicU64,
    pub gave_up: AtomicU64,
    pub cancelled: AtomicU64,
    pub moved: AtomicU64,
    pub holds: AtomicU64,
    pub abandoned: AtomicU64,
}

impl Tally {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub fn summary(&self, scenario: &str) -> String {
        format!(
            "{scenario}: {CLIENTS} clients, {} attempts ({} shed or timed out, retried), {} conflicts, \
             {} bookings ({} replays), {} gave up, {} holds ({} abandoned), {} cancels, {} moves",
            Self::get(&self.attempts),
            Self::get(&self.shed),
            Self::get(&self.conflicts),
            Self::get(&self.confirmed),
            Self::get(&self.replayed),
            Self::get(&self.gave_up),
            Self::get(&self.holds),
            Self::get(&self.abandoned),
            Self::get(&self.cancelled),
            Self::get(&self.moved),
        )
    }
}

fn is_conflict(status: &tonic::Status) -> bool {
    [r::SLOT_FULL, r::NO_SECOND_DOSE_SLOT, r::HOLD_EXPIRED].contains(&reason(status).as_str())
}

/// Back-pressure a client waits out and retries, with the same key.
fn is_back_pressure(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::ResourceExhausted
            | tonic::Code::Cancelled
            | tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
    )
}

async fn backoff(try_: u32) {
    let jitter = rand::rng().random_range(0..50);
    tokio::time::sleep(Duration::from_millis(50 * u64::from(try_.min(10)) + jitter)).await;
}

/// One client's attempt, retried with the same key through back-pressure
/// until a definite answer; conflicts are counted, anything else is a bug.
async fn attempt(t: &Target, tally: &Tally, request: pb::BookRequest) -> Option<pb::Booking> {
    for try_ in 1.. {
        tally.attempts.fetch_add(1, Relaxed);
        match t.book(request.clone()).await {
            Ok(booking) => {
                if booking.replayed {
                    tally.replayed.fetch_add(1, Relaxed);
                }
                if tally.references.lock().expect("references").insert(booking.reference.clone()) {
                    tally.confirmed.fetch_add(1, Relaxed);
                }
                return Some(booking);
            }
            Err(status) if is_conflict(&status) => {
                tally.conflicts.fetch_add(1, Relaxed);
                return None;
            }
            Err(status) if is_back_pressure(&status) && try_ < 50 => {
                tally.shed.fetch_add(1, Relaxed);
                backoff(try_).await;
            }
            Err(status) => panic!("unexpected answer under load: {status:?}"),
        }
    }
    unreachable!()
}

/// Calls again, after a pause, while the service pushes back.
async fn retry_through_back_pressure<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    for try_ in 1.. {
        match call().await {
            Err(status) if is_back_pressure(&status) && try_ < 50 => backoff(try_).await,
            other => return other,
        }
    }
    unreachable!()
}

fn person(i: usize) -> (String, String) {
    (format!("Client{i}"), format!("19{:02}-{:02}-{:02}", 20 + i % 40, 1 + i % 12, 1 + i % 28))
}

/// Every invariant, each printed; an error naming those broken.
pub async fn check_invariants(t: &Target) -> anyhow::Result<()> {
    let checks = invariants::check(&t.db, Utc::now()).await?;
    for check in &checks {
        println!("[rush]   {:<16} {} violations: {}", check.name, check.violations, check.rule);
    }
    let broken: Vec<_> = checks.iter().filter(|c| !c.holds()).map(|c| (c.name, c.violations)).collect();
    anyhow::ensure!(broken.is_empty(), "invariants broken: {broken:?}");
    Ok(())
}

/// The invariants, and the outbox against what the clients were told.
async fn check_against_tally(t: &Target, tally: &Tally) -> anyhow::Result<()> {
    check_invariants(t).await?;
    let events = |kind: &str| format!("SELECT COUNT(*) FROM outbox WHERE kind = '{kind}'");
    let expected = [
        ("booking.confirmed events", t.scalar(&events("booking.confirmed")).await, &tally.confirmed),
        ("booking.cancelled events", t.scalar(&events("booking.cancelled")).await, &tally.cancelled),
        ("booking.moved events", t.scalar(&events("booking.moved")).await, &tally.moved),
        ("bookings", t.scalar("SELECT COUNT(*) FROM bookings").await, &tally.confirmed),
    ];
    for (what, stored, told) in expected {
        anyhow::ensure!(stored as u64 == Tally::get(told), "{what}: {stored} stored, {} told", Tally::get(told));
    }
    Ok(())
}

/// Pfizer slots: `first` days of first-dose slots from tomorrow, and the
/// matching second-dose days three weeks later.
async fn pfizer_centre(t: &Target, first_days: i64, capacity: u32) -> (Vec<String>, Vec<String>) {
    let firsts: Vec<i64> = (0..first_days).collect();
    let seconds: Vec<i64> = (0..first_days).map(|d| d + 22).collect();
    let first = t.days("pfizer", "rush-centre", &firsts, capacity).await;
    let second = t.days("pfizer", "rush-centre", &seconds, capacity).await;
    (first, second)
}
