//! One citizen's morning, as a person in a browser lives it: check
//! eligibility, search near home (refreshing while nothing is published
//! yet), open a centre, list its slots, hold one, fill in the form, book;
//! on a refusal try another place, up to a number of attempts; leave when
//! patience runs out. Some cancel a little later.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::browser::{Browser, Reply};
use super::geography::{City, DEMAND_SKEW, near, pick_city};
use super::record::{CitizenRecord, Endpoint, Fate, Live, Queued, Sample};
use super::scenario::Scenario;

pub struct Crowd {
    pub browser: Browser,
    pub scenario: Scenario,
    /// Bookings open.
    pub opens_at: Instant,
}

/// How far from home citizens search.
pub const SEARCH_RADIUS_KM: f64 = 40.0;
/// How searches stop being worth repeating after the opening.
const EMPTY_SEARCHES_BEFORE_GIVING_UP: u32 = 3;

enum Joining {
    Ticket(String),
    /// The platform has no waiting room.
    NoRoom,
    /// Nothing left in the département: no line to join.
    SoldOut,
    Retry,
}

struct Citizen<'a> {
    crowd: &'a Crowd,
    index: usize,
    rng: StdRng,
    samples: Vec<Sample>,
    deadline: Instant,
    /// Whether the last request got no usable answer.
    failing: bool,
    attempts: u32,
    home: (f64, f64),
    city: &'static City,
    /// Shown on every funnel request once admitted.
    pass: Option<String>,
    queue: Option<Queued>,
}

/// Lives citizen `index`'s morning from `arrived`; returns what happened
/// and every request's sample.
pub async fn live(crowd: Arc<Crowd>, index: usize, arrived: Instant) -> (CitizenRecord, Vec<Sample>) {
    Live::bump(&crowd.browser.live.arrived);
    let arrived_ms = crowd.browser.ms_since_start();
    let mut rng = StdRng::seed_from_u64(crowd.scenario.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let city = pick_city(&mut rng, DEMAND_SKEW);
    let home = near(&mut rng, city, 15.0);
    let mut me = Citizen {
        crowd: &crowd,
        index,
        rng,
        home,
        city,
        pass: None,
        queue: None,
        samples: Vec::with_capacity(16),
        // Those waiting before the opening count their patience from it.
        deadline: arrived.max(crowd.opens_at) + crowd.scenario.patience,
        failing: false,
        attempts: 0,
    };
    let (fate, booking) = if crowd.scenario.queue {
        match me.wait_in_room().await {
            Ok(true) => {
                // Admitted: a few minutes to book, whatever the wait was.
                me.deadline = Instant::now() + crowd.scenario.admitted_patience;
                me.journey().await
            }
            // No room on this platform: straight to the funnel.
            Ok(false) => me.journey().await,
            Err(fate) => (fate, None),
        }
    } else {
        me.journey().await
    };
    let mut record = CitizenRecord {
        home,
        arrived_ms,
        ended_ms: crowd.browser.ms_since_start(),
        fate,
        booked_ms: booking.as_ref().map(|_| crowd.browser.ms_since_start()),
        reference: booking.as_ref().map(|b| b.0.clone()),
        cancelled: false,
        cancel_unanswered: false,
        queue: me.queue.take(),
    };
    if let Some((reference, secret)) = booking {
        Live::bump(&crowd.browser.live.booked);
        if me.rng.random_bool(crowd.scenario.cancel_share.clamp(0.0, 1.0)) {
            match me.cancel(&reference, &secret).await {
                Some(done) => record.cancelled = done,
                None => record.cancel_unanswered = true,
            }
        }
    }
    Live::bump(&crowd.browser.live.finished);
    (record, me.samples)
}

impl Citizen<'_> {
    fn browser(&self) -> &Browser {
        &self.crowd.browser
    }

    async fn send(&mut self, endpoint: Endpoint, request: reqwest::RequestBuilder) -> Reply {
        let request = match &self.pass {
            Some(pass) => request.header("x-creneau-pass", pass),
            None => request,
        };
        let reply = self.crowd.browser.send(&mut self.samples, endpoint, request).await;
        self.failing = reply.outcome.is_failure();
        reply
    }

    async fn pause(&mut self, from_ms: u64, to_ms: u64) {
        tokio::time::sleep(Duration::from_millis(self.rng.random_range(from_ms..=to_ms))).await;
    }

    /// After an error page: wait a little, as a person would, then retry.
    async fn back_off(&mut self) {
        self.pause(1_000, 3_000).await;
    }

    fn out_of_patience(&self) -> Option<Fate> {
        (Instant::now() >= self.deadline).then_some(if self.failing { Fate::NoAnswer } else { Fate::GaveUpWaiting })
    }

    /// A refused place: another try, or the end.
    fn lost_race(&mut self) -> Option<Fate> {
        self.attempts += 1;
        (self.attempts >= self.crowd.scenario.attempts).then_some(Fate::GaveUpRaces)
    }

    /// An answer no correct server gives to this client: counted apart.
    fn unexpected(&mut self) -> Fate {
        Live::bump(&self.browser().live.unexpected);
        Fate::NoAnswer
    }

    /// Joins the waiting room for the home département and waits there,
    /// asking again when told, until admitted (`Ok(true)`), told the
    /// département sold out, or out of patience. `Ok(false)`: the platform
    /// has no waiting room.
    async fn wait_in_room(&mut self) -> Result<bool, Fate> {
        let scenario = &self.crowd.scenario;
        let patience = if self.rng.random_bool(scenario.abandon_share.clamp(0.0, 1.0)) {
            Duration::from_secs(self.rng.random_range(30..=scenario.queue_patience.as_secs().max(31)))
        } else {
            scenario.queue_patience
        };
        let leave_at = Instant::now().max(self.crowd.opens_at) + patience;
        let mut ticket = None;
        loop {
            if Instant::now() >= leave_at {
                return Err(if self.failing { Fate::NoAnswer } else { Fate::LeftQueue });
            }
            let Some(current) = ticket.clone() else {
                match self.join().await {
                    Joining::Ticket(t) => ticket = Some(t),
                    Joining::NoRoom => return Ok(false),
                    Joining::SoldOut => return Err(Fate::SoldOutInQueue),
                    Joining::Retry => self.back_off().await,
                }
                continue;
            };
            let request = self.browser().get("/api/v1/queue/status").bearer_auth(&current);
            let reply = self.send(Endpoint::QueueStatus, request).await;
            let now_ms = self.browser().ms_since_start();
            match (reply.status(), reply.body["status"].as_str()) {
                (Some(200), Some("admitted")) => {
                    self.pass = reply.body["pass"].as_str().map(str::to_owned);
                    if let Some(q) = &mut self.queue {
                        q.admitted_ms = Some(now_ms);
                    }
                    return Ok(true);
                }
                (Some(200), Some("sold-out")) => {
                    if let Some(q) = &mut self.queue {
                        q.sold_out_ms = Some(now_ms);
                    }
                    return Err(Fate::SoldOutInQueue);
                }
                (Some(200), Some("waiting")) => {
                    ticket = reply.body["ticket"].as_str().map(str::to_owned).or(ticket);
                    let wait = self.waiting(&reply.body, now_ms);
                    tokio::time::sleep(wait).await;
                }
                (Some(410), _) => ticket = None,
                (Some(s), _) if s < 500 => return Err(self.unexpected()),
                _ => self.back_off().await,
            }
        }
    }

    /// Records a "waiting" answer; how long to wait before asking again.
    fn waiting(&mut self, body: &Value, now_ms: u32) -> Duration {
        if let Some(q) = &mut self.queue {
            q.last_waiting_ms = Some(now_ms);
            if let Some(wait) = body["estimated_wait_s"].as_u64() {
                q.estimates.push((now_ms, wait.min(u64::from(u32::MAX)) as u32));
            }
        }
        let refresh = body["refresh_after_s"].as_u64().unwrap_or(5).clamp(1, 120);
        // A browser's timer, not a metronome.
        Duration::from_millis(refresh * 1000 * self.rng.random_range(90..=110) / 100)
    }

    /// Solves a challenge and joins.
    async fn join(&mut self) -> Joining {
        let reply = self.send(Endpoint::QueueJoin, self.browser().get("/api/v1/queue/challenge")).await;
        match reply.status() {
            Some(200) => {}
            Some(404) => return Joining::NoRoom,
            _ => return Joining::Retry,
        }
        let (Some(challenge), Some(difficulty)) =
            (reply.body["challenge"].as_str().map(str::to_owned), reply.body["difficulty"].as_u64())
        else {
            return Joining::Retry;
        };
        let difficulty = difficulty.min(32) as u8;
        let solution = creneau_gateway::queue::pow::solve(&challenge, difficulty);
        let body = json!({ "postcode": self.city.postcode, "challenge": challenge, "solution": solution });
        let reply = self.send(Endpoint::QueueJoin, self.browser().post("/api/v1/queue").json(&body)).await;
        let now_ms = self.browser().ms_since_start();
        match reply.status() {
            Some(202) => {
                let mut queued = Queued { department: self.city.department, joined_ms: now_ms, ..Default::default() };
                if reply.body["status"] == "sold-out" {
                    queued.sold_out_ms = Some(now_ms);
                    self.queue = Some(queued);
                    return Joining::SoldOut;
                }
                if let Some(wait) = reply.body["estimated_wait_s"].as_u64() {
                    queued.estimates.push((now_ms, wait.min(u64::from(u32::MAX)) as u32));
                }
                self.queue = Some(queued);
                reply.body["ticket"].as_str().map_or(Joining::Retry, |t| Joining::Ticket(t.to_owned()))
            }
            Some(s) if s < 500 => {
                self.unexpected();
                Joining::Retry
            }
            _ => Joining::Retry,
        }
    }

    async fn journey(&mut self) -> (Fate, Option<(String, String)>) {
        let (lat, lon) = self.home;
        let birth_date = format!(
            "{}-{:02}-{:02}",
            self.rng.random_range(1925..1946),
            self.rng.random_range(1..=12),
            self.rng.random_range(1..=28)
        );
        let attestation = loop {
            if let Some(fate) = self.out_of_patience() {
                return (fate, None);
            }
            let body = json!({ "birth_date": birth_date, "conditions": [], "dose": 1 });
            let reply = self.send(Endpoint::Eligibility, self.browser().post("/api/v1/eligibility").json(&body)).await;
            match reply.status() {
                Some(200) if reply.body["eligible"] == true => {
                    break reply.body["attestation"].as_str().unwrap_or_default().to_owned();
                }
                Some(s) if s < 500 => return (self.unexpected(), None),
                _ => self.back_off().await,
            }
        };
        let citizen = json!({
            "first_name": "Rush",
            "last_name": format!("Citoyen{}", self.index),
            "birth_date": birth_date,
            "email": format!("citoyen{}@example.fr", self.index),
        });
        let search = format!("/api/v1/centres?lat={lat:.5}&lon={lon:.5}&radius_km={SEARCH_RADIUS_KM}&limit=10");
        let mut empty_searches = 0;
        loop {
            if let Some(fate) = self.out_of_patience() {
                return (fate, None);
            }
            let reply = self.send(Endpoint::Search, self.browser().get(&search)).await;
            match reply.status() {
                Some(200) => {}
                Some(s) if s < 500 => return (self.unexpected(), None),
                _ => {
                    self.back_off().await;
                    continue;
                }
            }
            let open: Vec<String> = reply.body["centres"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .filter(|c| c["available_slots_7d"].as_u64().unwrap_or(0) > 0 || !c["next_slot"].is_null())
                        .filter_map(|c| c["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if open.is_empty() {
                if Instant::now() < self.crowd.opens_at {
                    // Waiting for the opening: refresh every few seconds.
                    self.pause(2_000, 5_000).await;
                    continue;
                }
                empty_searches += 1;
                if empty_searches >= EMPTY_SEARCHES_BEFORE_GIVING_UP {
                    return (Fate::NoSlotLeft, None);
                }
                self.pause(2_000, 4_000).await;
                continue;
            }
            empty_searches = 0;
            // Most take the nearest centre with room, some look further.
            let pick = if self.rng.random_bool(0.6) { 0 } else { self.rng.random_range(0..open.len().min(3)) };
            match self.try_centre(&open[pick], &attestation, &citizen).await {
                Ok(Some(booking)) => return (Fate::Booked, Some(booking)),
                Ok(None) => {}
                Err(fate) => return (fate, None),
            }
        }
    }

    /// Opens a centre's page and tries its earliest places. `Ok(None)`:
    /// back to the search; `Err`: the citizen's morning is over.
    async fn try_centre(
        &mut self,
        centre: &str,
        attestation: &str,
        citizen: &Value,
    ) -> Result<Option<(String, String)>, Fate> {
        let reply = self.send(Endpoint::Centre, self.browser().get(&format!("/api/v1/centres/{centre}"))).await;
        if reply.status() != Some(200) {
            return self.failed_page(&reply).await;
        }
        let path = format!("/api/v1/centres/{centre}/slots?days=14");
        // A refused place refreshes the page; after a few, back to the search.
        for _ in 0..3 {
            if let Some(fate) = self.out_of_patience() {
                return Err(fate);
            }
            let reply = self.send(Endpoint::Slots, self.browser().get(&path)).await;
            if reply.status() != Some(200) {
                return self.failed_page(&reply).await;
            }
            let mut slots: Vec<(String, String)> = reply.body["slots"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .filter(|s| s["remaining"].as_u64().unwrap_or(0) > 0)
                        .filter_map(|s| Some((s["starts_at"].as_str()?.to_owned(), s["id"].as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            if slots.is_empty() {
                return Ok(None);
            }
            slots.sort();
            // People click one of the first few places shown, not always the first.
            let slot = slots.swap_remove(self.rng.random_range(0..slots.len().min(6))).1;
            self.pause(200, 800).await;
            let body = json!({ "slot_id": slot, "attestation": attestation });
            let reply = self.send(Endpoint::Hold, self.browser().post("/api/v1/holds").json(&body)).await;
            let hold_id = match reply.status() {
                Some(201) => reply.body["hold_id"].as_str().unwrap_or_default().to_owned(),
                Some(409) => match self.lost_race() {
                    Some(fate) => return Err(fate),
                    None => continue,
                },
                Some(s) if s < 500 => return Err(self.unexpected()),
                _ => {
                    self.back_off().await;
                    continue;
                }
            };
            // Filling in the form.
            self.pause(1_000, 3_000).await;
            return self.book(&hold_id, attestation, citizen).await;
        }
        Ok(None)
    }

    /// Books a held place, retrying with the same idempotency key until
    /// an answer comes: a retried request never books twice.
    async fn book(&mut self, hold: &str, attestation: &str, citizen: &Value) -> Result<Option<(String, String)>, Fate> {
        let key = uuid::Uuid::new_v4().to_string();
        let body = json!({ "hold_id": hold, "attestation": attestation, "citizen": citizen });
        loop {
            let request = self.browser().post("/api/v1/bookings").header("idempotency-key", &key).json(&body);
            let reply = self.send(Endpoint::Book, request).await;
            match reply.status() {
                Some(200 | 201) => {
                    let reference = reply.body["reference"].as_str().unwrap_or_default().to_owned();
                    let secret = reply.body["secret"].as_str().unwrap_or_default().to_owned();
                    return Ok(Some((reference, secret)));
                }
                // The hold lapsed, or no second-dose place was left.
                Some(409) => return self.lost_race().map_or(Ok(None), Err),
                Some(s) if s < 500 => return Err(self.unexpected()),
                _ => {
                    if let Some(fate) = self.out_of_patience() {
                        return Err(fate);
                    }
                    self.back_off().await;
                }
            }
        }
    }

    /// A centre page that did not load: retry from the search.
    async fn failed_page(&mut self, reply: &Reply) -> Result<Option<(String, String)>, Fate> {
        match reply.status() {
            // Closed or unpublished in the meantime.
            Some(404) => Ok(None),
            Some(s) if s < 500 => Err(self.unexpected()),
            _ => {
                self.back_off().await;
                Ok(None)
            }
        }
    }

    /// `None` when no answer came: the booking may or may not be cancelled.
    async fn cancel(&mut self, reference: &str, secret: &str) -> Option<bool> {
        self.pause(2_000, 8_000).await;
        for _ in 0..5 {
            let request = self.browser().delete(&format!("/api/v1/bookings/{reference}")).bearer_auth(secret);
            let reply = self.send(Endpoint::Cancel, request).await;
            match reply.status() {
                Some(200) => return Some(true),
                Some(s) if s < 500 => {
                    self.unexpected();
                    return Some(false);
                }
                _ => self.back_off().await,
            }
        }
        None
    }
}
