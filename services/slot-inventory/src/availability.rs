//! The availability stream: every replica keeps the availability of every
//! centre in memory, follows the change feed the database's triggers fill
//! (so writes through any replica are seen), and streams it to
//! subscribers — a snapshot, then the centres that changed, each update
//! numbered so that a subscriber that loses its connection resumes where
//! it stopped, or gets a new snapshot when this process no longer has
//! what it missed.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use creneau_kit::db::changes::Tail;
use creneau_proto::slot_inventory::v1::{self as pb, availability_update::Kind};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::{broadcast, mpsc};
use tonic::Status;

use crate::domain::availability::{DayPart, next_expiry, summarise};
use crate::slot_lists::SlotLists;
use crate::storage::{self, VaccineCatalogue};

/// How far ahead availability is streamed: the longest search window.
pub const HORIZON_DAYS: i64 = 63;
const POLL: Duration = Duration::from_millis(100);
const HEARTBEAT: Duration = Duration::from_millis(500);
/// Everything is read again now and then, so that nothing can drift.
const RECONCILE: Duration = Duration::from_secs(600);
/// Updates kept for subscribers that resume.
const KEEP_UPDATES: usize = 4096;
const CENTRES_PER_QUERY: usize = 500;
/// Messages stay far below gRPC's default 4 MiB limit even for centres
/// with two months of slots.
const CENTRES_PER_MESSAGE: usize = 200;

#[derive(Clone)]
pub struct AvailabilityStream {
    shared: Arc<Shared>,
    /// Slot lists, dropped as their centres change.
    pub(crate) slot_lists: SlotLists,
}

struct Shared {
    epoch: String,
    state: RwLock<State>,
    updates: broadcast::Sender<Arc<pb::AvailabilityUpdate>>,
    /// Set when the server stops: subscribers' streams end at once rather
    /// than holding the shutdown for its grace period.
    closed: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    loaded: bool,
    sequence: u64,
    as_of_ms: i64,
    centres: HashMap<String, Vec<DayPart>>,
    vaccines: Vec<pb::VaccineDoses>,
    recent: VecDeque<Arc<pb::AvailabilityUpdate>>,
}

fn to_pb(centre_id: &str, parts: &[DayPart]) -> pb::CentreDays {
    pb::CentreDays {
        centre_id: centre_id.to_owned(),
        days: parts
            .iter()
            .map(|p| pb::DayPart {
                day: p.day,
                vaccine: p.vaccine.clone(),
                time_of_day: match p.time_of_day {
                    creneau_kit::vocab::TimeOfDay::Morning => pb::TimeOfDay::Morning,
                    creneau_kit::vocab::TimeOfDay::Afternoon => pb::TimeOfDay::Afternoon,
                    creneau_kit::vocab::TimeOfDay::Evening => pb::TimeOfDay::Evening,
                } as i32,
                places_left: p.places_left,
                next_slot: p.next_slot,
            })
            .collect(),
    }
}

impl Default for AvailabilityStream {
    fn default() -> Self {
        Self::new()
    }
}

impl AvailabilityStream {
    pub fn new() -> Self {
        let (updates, _) = broadcast::channel(1024);
        Self {
            shared: Arc::new(Shared {
                epoch: uuid::Uuid::new_v4().simple().to_string(),
                state: RwLock::new(State::default()),
                updates,
                closed: tokio::sync::watch::Sender::new(false),
            }),
            slot_lists: SlotLists::default(),
        }
    }

    /// Ends every subscriber's stream (they resume elsewhere).
    pub fn close(&self) {
        self.shared.closed.send_replace(true);
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.shared.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.shared.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows the database until the task is dropped.
    pub async fn run(self, db: DatabaseConnection) {
        let catalogue = VaccineCatalogue::default();
        let mut follower = loop {
            match Follower::start(&self, &db, &catalogue).await {
                Ok(follower) => break follower,
                Err(error) => {
                    tracing::warn!(%error, "availability: loading failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut ticks = tokio::time::interval(POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heartbeat = Instant::now();
        loop {
            ticks.tick().await;
            if let Err(error) = follower.step(&self, &db, &catalogue).await {
                tracing::warn!(%error, "availability: following changes failed");
            }
            if last_heartbeat.elapsed() >= HEARTBEAT {
                last_heartbeat = Instant::now();
                let state = self.state();
                let beat = self.message(&state, Kind::Heartbeat, Vec::new());
                let _ = self.shared.updates.send(Arc::new(beat));
            }
        }
    }

    fn message(&self, state: &State, kind: Kind, centres: Vec<pb::CentreDays>) -> pb::AvailabilityUpdate {
        pb::AvailabilityUpdate {
            kind: kind as i32,
            epoch: self.shared.epoch.clone(),
            sequence: state.sequence,
            as_of_ms: state.as_of_ms,
            centres,
            vaccines: Vec::new(),
        }
    }

    /// Applies what was recomputed; publishes the centres that changed.
    fn apply(
        &self,
        as_of: DateTime<Utc>,
        fresh: HashMap<String, Vec<DayPart>>,
        vaccines: Option<Vec<pb::VaccineDoses>>,
    ) {
        let mut state = self.state_mut();
        let mut changed = Vec::new();
        for (centre, parts) in fresh {
            let same = state.centres.get(&centre).is_some_and(|known| *known == parts)
                || (parts.is_empty() && !state.centres.contains_key(&centre));
            if same {
                continue;
            }
            changed.push(to_pb(&centre, &parts));
            if parts.is_empty() {
                state.centres.remove(&centre);
            } else {
                state.centres.insert(centre, parts);
            }
        }
        let mut vaccines = vaccines.filter(|v| *v != state.vaccines);
        state.as_of_ms = as_of.timestamp_millis();
        if changed.is_empty() && vaccines.is_none() {
            return;
        }
        let mut chunks: Vec<Vec<pb::CentreDays>> = changed.chunks(CENTRES_PER_MESSAGE).map(<[_]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        for centres in chunks {
            state.sequence += 1;
            let mut update = self.message(&state, Kind::Delta, centres);
            if let Some(vaccines) = vaccines.take() {
                state.vaccines = vaccines.clone();
                update.vaccines = vaccines;
            }
            let update = Arc::new(update);
            state.recent.push_back(update.clone());
            if state.recent.len() > KEEP_UPDATES {
                state.recent.pop_front();
            }
            let _ = self.shared.updates.send(update);
        }
    }

    /// A subscriber's stream: a snapshot or what it missed, then every
    /// update as it happens. A subscriber too slow to keep up is cut off
    /// (it resumes or gets a new snapshot).
    pub fn subscribe(
        &self,
        epoch: &str,
        after: u64,
    ) -> Result<mpsc::Receiver<Result<pb::AvailabilityUpdate, Status>>, Status> {
        let mut live = self.shared.updates.subscribe();
        let mut closed = self.shared.closed.subscribe();
        let (first, sequence) = {
            let state = self.state();
            if !state.loaded {
                return Err(creneau_kit::errors::status(
                    tonic::Code::Unavailable,
                    creneau_kit::errors::reason::UNAVAILABLE,
                    "availability is still loading",
                ));
            }
            (self.catch_up(&state, epoch, after), state.sequence)
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            for message in first {
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            loop {
                let received = tokio::select! {
                    received = live.recv() => received,
                    _ = closed.wait_for(|closed| *closed) => return,
                };
                let update = match received {
                    Ok(update) => update,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(Err(Status::aborted("availability subscriber fell behind; resume"))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let heartbeat = update.kind == Kind::Heartbeat as i32;
                if (heartbeat || update.sequence > sequence) && tx.send(Ok((*update).clone())).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    fn catch_up(&self, state: &State, epoch: &str, after: u64) -> Vec<pb::AvailabilityUpdate> {
        let resumable = epoch == self.shared.epoch
            && after <= state.sequence
            && (after == state.sequence || state.recent.front().is_some_and(|u| u.sequence <= after + 1));
        if resumable {
            let mut missed: Vec<_> =
                state.recent.iter().filter(|u| u.sequence > after).map(|u| (**u).clone()).collect();
            missed.push(self.message(state, Kind::Heartbeat, Vec::new()));
            return missed;
        }
        let mut begin = self.message(state, Kind::SnapshotBegin, Vec::new());
        begin.vaccines = state.vaccines.clone();
        let mut messages = vec![begin];
        let all: Vec<pb::CentreDays> = state.centres.iter().map(|(id, parts)| to_pb(id, parts)).collect();
        for chunk in all.chunks(CENTRES_PER_MESSAGE) {
            messages.push(self.message(state, Kind::SnapshotPart, chunk.to_vec()));
        }
        messages.push(self.message(state, Kind::SnapshotEnd, Vec::new()));
        messages
    }
}

/// The loop's own state: its place in the feed and when each centre's
/// availability next changes by itself (its earliest free slot starts).
struct Follower {
    tail: Tail,
    expiries: BinaryHeap<Reverse<(i64, String)>>,
    /// The entry of each centre in `expiries` that counts (others are stale).
    expiry_of: HashMap<String, i64>,
    reconciled: Instant,
}

impl Follower {
    async fn start(
        stream: &AvailabilityStream,
        db: &DatabaseConnection,
        catalogue: &VaccineCatalogue,
    ) -> Result<Self, DbErr> {
        // The feed's position first: what commits after it is read again
        // from the feed, what committed before it is in the full load.
        let tail = Tail::start(storage::availability::CHANGES, db).await?;
        let mut follower =
            Self { tail, expiries: BinaryHeap::new(), expiry_of: HashMap::new(), reconciled: Instant::now() };
        follower.reload_all(stream, db, catalogue).await?;
        stream.state_mut().loaded = true;
        Ok(follower)
    }

    async fn reload_all(
        &mut self,
        stream: &AvailabilityStream,
        db: &DatabaseConnection,
        catalogue: &VaccineCatalogue,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let mut centres: BTreeSet<String> =
            storage::availability::centres(db, now, now + chrono::Duration::days(HORIZON_DAYS))
                .await?
                .into_iter()
                .collect();
        centres.extend(stream.state().centres.keys().cloned());
        let mut vaccines = catalogue
            .current(db)
            .await?
            .values()
            .map(|v| pb::VaccineDoses {
                vaccine: v.code.clone(),
                second: v.needs_second_dose(),
                booster: v.booster_min_delay_days > 0,
            })
            .collect::<Vec<_>>();
        vaccines.sort_by(|a, b| a.vaccine.cmp(&b.vaccine));
        self.recompute(stream, db, centres, now, Some(vaccines)).await?;
        self.reconciled = Instant::now();
        Ok(())
    }

    async fn step(
        &mut self,
        stream: &AvailabilityStream,
        db: &DatabaseConnection,
        catalogue: &VaccineCatalogue,
    ) -> Result<(), DbErr> {
        if self.reconciled.elapsed() >= RECONCILE {
            return self.reload_all(stream, db, catalogue).await;
        }
        let now = Utc::now();
        let mut dirty = self.tail.next(db).await?;
        stream.slot_lists.invalidate(&dirty);
        while let Some(Reverse((at, _))) = self.expiries.peek()
            && *at <= now.timestamp()
        {
            let Some(Reverse((at, centre))) = self.expiries.pop() else { break };
            if self.expiry_of.get(&centre) == Some(&at) {
                self.expiry_of.remove(&centre);
                dirty.insert(centre);
            }
        }
        self.recompute(stream, db, dirty, now, None).await
    }

    async fn recompute(
        &mut self,
        stream: &AvailabilityStream,
        db: &DatabaseConnection,
        centres: BTreeSet<String>,
        now: DateTime<Utc>,
        vaccines: Option<Vec<pb::VaccineDoses>>,
    ) -> Result<(), DbErr> {
        let until = now + chrono::Duration::days(HORIZON_DAYS);
        let centres: Vec<String> = centres.into_iter().collect();
        let mut fresh = HashMap::with_capacity(centres.len());
        for chunk in centres.chunks(CENTRES_PER_QUERY) {
            let mut free = storage::availability::free_slots(db, chunk, now, until).await?;
            for centre in chunk {
                let parts = summarise(&free.remove(centre).unwrap_or_default(), now);
                match next_expiry(&parts) {
                    Some(at) if self.expiry_of.get(centre) != Some(&at) => {
                        self.expiry_of.insert(centre.clone(), at);
                        self.expiries.push(Reverse((at, centre.clone())));
                    }
                    Some(_) => {}
                    None => {
                        self.expiry_of.remove(centre);
                    }
                }
                fresh.insert(centre.clone(), parts);
            }
        }
        stream.apply(now, fresh, vaccines);
        Ok(())
    }
}
