//! The waiting room at work on one replica. A join or a status touches
//! nothing but memory: the ticket is sealed here, its key is drawn from
//! the clock, and the answer comes from the board last read. Once a second
//! each replica writes its new joins and its signals, and reads the board;
//! the replica holding the lease also leads: it reads the joins every
//! replica wrote, asks the directory for the places left, runs the closed
//! loop and the admitter, and publishes the next board.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};

use super::admission::{Controller, Limits};
use super::estimate::{self, Pace};
use super::keys::Keyring;
use super::meter::Meter;
use super::pow::{self, Difficulty, PowError, Spent};
use super::room::{self, Admitter, Board, Published, Standing};
use super::store::Store;
use super::tokens::{Pass, Sealed, Ticket, TicketId, TokenError};

/// Joins become visible to the leader this long after they happen: every
/// replica has written its last second's joins by then, so the log is read
/// in key order without missing any.
const SETTLE_MS: i64 = 2_500;
/// A leader that stops renewing loses the lead after this long.
const LEASE_MS: i64 = 3_000;
/// No places known for this long: nobody is admitted.
const INVENTORY_STALE_MS: i64 = 5_000;

#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub keys: Keyring,
    pub pass_ttl_ms: i64,
    pub ticket_ttl_ms: i64,
    pub limits: Limits,
    /// Passes out (given, not yet seen to book) at most, all départements.
    pub max_passes: u32,
    pub margin: f64,
    /// A pass not seen to book within this long is taken as abandoned: its
    /// place goes back to the line.
    pub abandon_after_s: i64,
    pub difficulty: Difficulty,
    /// Joins a minute from one address; 0: no limit.
    pub joins_per_ip_per_minute: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Pow(#[from] PowError),
    #[error("{0:?} is not the postcode of a département")]
    UnknownPostcode(String),
    #[error("too many joins from this address; retry in a minute")]
    TooManyJoins,
}

/// A fresh ticket and where it stands.
pub struct Joined {
    pub ticket: String,
    pub status: Status,
}

/// What a status answers.
pub enum Status {
    Waiting { ahead: u64, wait_s: Option<u64>, places_left: u32, refresh_after_s: u64, ticket: String },
    Admitted { pass: String, pass_expires_ms: i64 },
    SoldOut { next_publication_ms: Option<i64> },
}

pub struct Room {
    config: QueueConfig,
    replica: String,
    store: Store,
    published: RwLock<Arc<Published>>,
    pending: Mutex<Vec<(u64, String)>>,
    spent: Mutex<Spent>,
    per_ip: Mutex<(i64, HashMap<IpAddr, u32>)>,
    pub meter: Meter,
    leading: tokio::sync::Mutex<Option<Leading>>,
}

impl Room {
    pub fn new(config: QueueConfig, store: Store) -> Self {
        let replica = TicketId::random().to_string();
        Self {
            config,
            replica,
            store,
            published: RwLock::default(),
            pending: Mutex::default(),
            spent: Mutex::default(),
            per_ip: Mutex::default(),
            meter: Meter::default(),
            leading: tokio::sync::Mutex::default(),
        }
    }

    /// This replica's name in the shared state.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn keys(&self) -> &Keyring {
        &self.config.keys
    }

    pub fn published(&self) -> Arc<Published> {
        self.published.read().expect("board lock").clone()
    }

    /// The difficulty new joins must meet.
    pub fn difficulty(&self) -> u8 {
        self.published().board.difficulty.max(self.config.difficulty.floor)
    }

    pub fn challenge(&self, now: DateTime<Utc>) -> (String, u8) {
        let difficulty = self.difficulty();
        (pow::challenge(&self.config.keys, difficulty, now), difficulty)
    }

    fn count_join(&self, ip: Option<IpAddr>, now: DateTime<Utc>) -> Result<(), QueueError> {
        let (Some(ip), limit) = (ip, self.config.joins_per_ip_per_minute) else { return Ok(()) };
        if limit == 0 {
            return Ok(());
        }
        let minute = now.timestamp() / 60;
        let mut per_ip = self.per_ip.lock().expect("per-ip lock");
        if per_ip.0 != minute {
            *per_ip = (minute, HashMap::new());
        }
        let n = per_ip.1.entry(ip).or_default();
        if *n >= limit {
            return Err(QueueError::TooManyJoins);
        }
        *n += 1;
        Ok(())
    }

    /// A citizen joins the line for `postcode`'s département.
    pub fn join(
        &self,
        postcode: &str,
        challenge: &str,
        solution: u64,
        ip: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Joined, QueueError> {
        let department =
            super::postcode::department(postcode).ok_or_else(|| QueueError::UnknownPostcode(postcode.to_owned()))?;
        self.spent.lock().expect("spent lock").verify(&self.config.keys, challenge, solution, now)?;
        self.count_join(ip, now)?;
        let now_ms = now.timestamp_millis();
        let ticket = Ticket {
            id: TicketId::random(),
            department: department.clone(),
            order: room::key(now_ms, rand::random()),
            opening_ms: None,
            joined_ms: now_ms,
            expires_ms: now_ms + self.config.ticket_ttl_ms,
            shown: None,
        };
        self.pending.lock().expect("pending lock").push((ticket.order, department));
        let status = self.standing(ticket.clone(), now);
        let sealed = match &status {
            Status::Waiting { ticket, .. } => ticket.clone(),
            _ => ticket.seal(&self.config.keys),
        };
        Ok(Joined { ticket: sealed, status })
    }

    /// Where the holder of `token` stands.
    pub fn status(&self, token: &str, now: DateTime<Utc>) -> Result<Status, QueueError> {
        let ticket = Ticket::open(&self.config.keys, token, now)?;
        Ok(self.standing(ticket, now))
    }

    fn standing(&self, mut ticket: Ticket, now: DateTime<Utc>) -> Status {
        let published = self.published();
        let now_ms = now.timestamp_millis();
        let (ahead, places_left) = match published.standing(&ticket) {
            Standing::Admitted => {
                let pass = Pass::issue(&ticket, now, self.config.pass_ttl_ms);
                return Status::Admitted { pass: pass.seal(&self.config.keys), pass_expires_ms: pass.expires_ms };
            }
            Standing::SoldOut { next_publication_ms } => return Status::SoldOut { next_publication_ms },
            Standing::Waiting { ahead, places_left } => (ahead, places_left),
            // Not yet published: everyone is at the start of the line.
            Standing::Unknown => (published.total_waiting(), 0),
        };
        let pace = published.board.pace.or((published.board.rate > 0.0).then_some(published.board.rate));
        let shown = estimate::next(ticket.shown, ahead, pace, now_ms);
        ticket.shown = Some(shown);
        Status::Waiting {
            ahead: shown.ahead,
            wait_s: shown.wait_s,
            places_left,
            refresh_after_s: refresh_after(shown.wait_s),
            ticket: ticket.seal(&self.config.keys),
        }
    }

    /// Opens a pass; `Some(renewed)` when it is past half its life.
    pub fn check_pass(&self, token: &str, now: DateTime<Utc>) -> Result<(Pass, Option<String>), TokenError> {
        let pass = Pass::open(&self.config.keys, token, now)?;
        let now_ms = now.timestamp_millis();
        let renewed = (pass.expires_ms - now_ms < self.config.pass_ttl_ms / 2)
            .then(|| pass.renewed(now, self.config.pass_ttl_ms).seal(&self.config.keys));
        Ok((pass, renewed))
    }

    /// One second of shared work; errors are logged and tried next second.
    pub async fn tick(&self, directory: &crate::backends::Backends, now: DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        let joins = std::mem::take(&mut *self.pending.lock().expect("pending lock"));
        if !joins.is_empty()
            && let Err(error) = self.store.add_joins(&joins).await
        {
            tracing::warn!(%error, joins = joins.len(), "waiting room: joins not written yet");
            self.pending.lock().expect("pending lock").extend(joins);
        }
        if let Err(error) = self.store.report(&self.replica, now_ms, self.meter.read()).await {
            tracing::warn!(%error, "waiting room: signals not written");
        }
        match self.store.lead(&self.replica, now_ms, now_ms + LEASE_MS).await {
            Ok(true) => {
                let mut leading = self.leading.lock().await;
                match self.lead(&mut leading, directory, now).await {
                    Ok(board) => {
                        *self.published.write().expect("board lock") = Arc::new(Published::new(board));
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "waiting room: leading failed; starting over");
                        *leading = None;
                    }
                }
            }
            Ok(false) => *self.leading.lock().await = None,
            Err(error) => tracing::warn!(%error, "waiting room: lease not renewed"),
        }
        match self.store.board().await {
            Ok(Some(board)) => *self.published.write().expect("board lock") = Arc::new(Published::new(board)),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "waiting room: board not read"),
        }
    }

    /// Writes what is pending and gives up the lead: a replica that stops.
    pub async fn stop(&self) {
        let joins = std::mem::take(&mut *self.pending.lock().expect("pending lock"));
        if let Err(error) = self.store.add_joins(&joins).await {
            tracing::warn!(%error, "waiting room: joins lost at shutdown (their tickets still go in by key)");
        }
        let _ = self.store.resign(&self.replica).await;
    }

    async fn lead(
        &self,
        leading: &mut Option<Leading>,
        backends: &crate::backends::Backends,
        now: DateTime<Utc>,
    ) -> Result<Board, sea_orm::DbErr> {
        if leading.is_none() {
            *leading = Some(Leading::resume(&self.store, &self.config).await?);
            tracing::info!(replica = %self.replica, "waiting room: leading");
        }
        let me = leading.as_mut().expect("just set");
        let now_ms = now.timestamp_millis();
        let through = room::last_key_of(now_ms - SETTLE_MS);
        if through > me.board.read_through {
            let joins = self.store.joins(me.board.read_through, through).await?;
            me.board.joined += joins.len() as u64;
            me.waiting.extend(joins);
            me.board.read_through = through;
        }
        let places = places(backends).await;
        let signals = self.store.signals(now_ms - 2 * 1_000 - 500).await?;
        let board = me.step(&self.config, places, signals, now_ms);
        if !self.store.publish(&self.replica, &board).await? {
            return Err(sea_orm::DbErr::Custom("lost the lead".into()));
        }
        // Joins older than any ticket are no longer anyone's place.
        if now_ms / 1000 % 60 == 0 {
            self.store.forget_joins(room::key(now_ms - self.config.ticket_ttl_ms, 0)).await?;
        }
        Ok(board)
    }
}

/// When a waiting citizen should ask again: every second when their turn
/// is near (they go in without delay), rarely when it is far, so that
/// polling costs the room little.
fn refresh_after(wait_s: Option<u64>) -> u64 {
    match wait_s {
        None => 5,
        Some(w) => (w / 4).clamp(1, 30),
    }
}

/// Places left and next publication by département, from the directory.
type Places = HashMap<String, (u32, Option<i64>)>;

async fn places(backends: &crate::backends::Backends) -> Option<Places> {
    use creneau_proto::centre_directory::v1::DepartmentPlacesRequest;
    let mut request = tonic::Request::new(DepartmentPlacesRequest {});
    request.set_timeout(std::time::Duration::from_millis(900));
    match backends.centres.clone().department_places(request).await {
        Ok(answer) => Some(
            answer
                .into_inner()
                .departments
                .into_iter()
                .map(|d| {
                    let next = d
                        .next_publication
                        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                        .map(|t| t.timestamp_millis());
                    (d.department, (d.places_left, next))
                })
                .collect(),
        ),
        Err(error) => {
            tracing::warn!(code = ?error.code(), "waiting room: places per département not known");
            None
        }
    }
}

/// What only the leader keeps: the log of waiting keys, the loop's state.
struct Leading {
    board: Board,
    waiting: BTreeMap<u64, String>,
    controller: Controller,
    pace: Pace,
    places_known_ms: i64,
    last_ms: i64,
    carry: f64,
    joins_per_s: f64,
    last_joined: u64,
}

impl Leading {
    /// Takes over from the board last published: the log is read again
    /// from the joins table, less what each line has admitted.
    async fn resume(store: &Store, config: &QueueConfig) -> Result<Self, sea_orm::DbErr> {
        let board = store.board().await?.unwrap_or_default();
        let mut waiting = BTreeMap::new();
        for (key, department) in store.joins(0, board.read_through).await? {
            if board.departments.get(&department).is_none_or(|l| key > l.admitted_through) {
                waiting.insert(key, department);
            }
        }
        let mut controller = Controller::new(config.limits);
        if board.rate > 0.0 {
            controller.set_rate(board.rate);
        }
        Ok(Self {
            last_joined: board.joined,
            board,
            waiting,
            controller,
            pace: Pace::default(),
            places_known_ms: 0,
            last_ms: 0,
            carry: 0.0,
            joins_per_s: 0.0,
        })
    }

    fn step(
        &mut self,
        config: &QueueConfig,
        places: Option<Places>,
        signals: Option<super::admission::Signals>,
        now_ms: i64,
    ) -> Board {
        let dt = if self.last_ms == 0 { 1.0 } else { ((now_ms - self.last_ms) as f64 / 1000.0).clamp(0.0, 5.0) };
        self.last_ms = now_ms;
        let now_s = now_ms / 1000;
        let before: BTreeMap<String, bool> =
            self.board.departments.iter().map(|(d, l)| (d.clone(), l.places_left == 0)).collect();
        if let Some(places) = places {
            self.places_known_ms = now_ms;
            for (department, line) in self.board.departments.iter_mut() {
                if !places.contains_key(department) {
                    line.places_left = 0;
                }
            }
            for (department, (left, next)) in places {
                let line = self.board.departments.entry(department).or_default();
                // Places gone since the last tick are passes seen to book:
                // the oldest passes out are taken as used.
                let mut used = line.places_left.saturating_sub(left);
                while used > 0 && !line.out.is_empty() {
                    let (_, n) = &mut line.out[0];
                    let take = used.min(*n);
                    *n -= take;
                    used -= take;
                    if *n == 0 {
                        line.out.remove(0);
                    }
                }
                line.places_left = left;
                line.next_publication_ms = next;
            }
        }
        let abandoned_before = now_s - config.abandon_after_s;
        for line in self.board.departments.values_mut() {
            line.out.retain(|(s, _)| *s > abandoned_before);
        }
        if let Some(signals) = signals {
            self.controller.adjust(signals);
        }
        let rate = self.controller.rate();
        let out: u32 = self.board.departments.values().map(|l| l.passes_out()).sum();
        let stale = now_ms - self.places_known_ms > INVENTORY_STALE_MS;
        let budget = if self.board.paused || stale {
            self.carry = 0.0;
            0
        } else {
            let wanted = rate * dt + self.carry;
            let budget = (wanted.floor() as u32).min(config.max_passes.saturating_sub(out));
            self.carry = (wanted - f64::from(budget)).min(rate);
            budget
        };
        let admitted = Admitter { margin: config.margin }.admit(&mut self.board, &mut self.waiting, budget, now_s);
        if admitted < budget {
            // Nobody to admit: no credit saved for a burst later.
            self.carry = 0.0;
        }
        let open_waiting =
            self.waiting.values().any(|d| self.board.departments.get(d).is_some_and(|l| !l.held && l.places_left > 0));
        if admitted > 0 || open_waiting {
            self.pace.observe(now_ms, self.board.admitted);
        } else {
            self.pace.idle(now_ms, self.board.admitted);
        }
        let joined_now = self.board.joined.saturating_sub(self.last_joined) as f64 / dt.max(0.001);
        self.last_joined = self.board.joined;
        self.joins_per_s += (1.0 - (-dt / 10.0f64).exp()) * (joined_now - self.joins_per_s);
        let by_second = room::waiting_by_second(&self.waiting);
        for (department, line) in self.board.departments.iter_mut() {
            line.waiting = by_second.get(department.as_str()).cloned().unwrap_or_default();
        }
        let previous_rate = self.board.rate;
        self.board.rate = rate;
        self.board.pace = self.pace.per_s();
        self.board.difficulty = config.difficulty.at(self.joins_per_s);
        self.board.at_ms = now_ms;
        for (department, line) in &self.board.departments {
            let sold_out = line.places_left == 0;
            if before.get(department).copied().unwrap_or(false) != sold_out {
                let waiting: u32 = line.waiting.iter().map(|(_, n)| n).sum();
                tracing::info!(department = %department, sold_out, waiting, "waiting room: département changed");
            }
        }
        if (rate - previous_rate).abs() > previous_rate.max(1.0) * 0.1 || now_s % 10 == 0 {
            tracing::info!(
                rate = format!("{rate:.1}"),
                pace = format!("{:.1}", self.board.pace.unwrap_or(0.0)),
                waiting = self.waiting.len(),
                admitted = self.board.admitted,
                passes_out = out,
                difficulty = self.board.difficulty,
                "waiting room"
            );
        }
        self.board.clone()
    }
}
