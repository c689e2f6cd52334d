//! Open availability data for aggregators, so nobody needs to scrape: the
//! SMART Scheduling Links format — a `$bulk-publish` manifest pointing at
//! NDJSON files of FHIR Location, Schedule and Slot resources. Built in
//! the background from the directory's memory (its centres and the
//! availability slot-inventory streams to it: no call per centre), served
//! from memory with an ETag and Cache-Control so aggregators poll cheaply.
//! A Slot is a part of a day (the format allows coarse slots): its places
//! left are its capacity, its start the earliest free appointment.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use chrono::Utc;
use creneau_proto::centre_directory::v1::{self as directory, ListCentresRequest};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::problem::Problem;
use crate::startup::AppState;

/// How often the feed is rebuilt (at most).
pub const REBUILD_EVERY: Duration = Duration::from_secs(10);
const BOOKING_LINK: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link";
const CAPACITY: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity";
const VACCINE_PRODUCT: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/vaccine-product";

/// One generation of the feed: the three NDJSON files and their ETag.
pub struct Feed {
    transaction_time: String,
    locations: String,
    schedules: String,
    slots: String,
    etag: String,
}

#[derive(Clone, Default)]
pub struct FeedCache(Arc<RwLock<Option<Arc<Feed>>>>, Arc<std::sync::Mutex<Option<std::time::Instant>>>);

/// Nobody asked for the feed for this long: it is no longer rebuilt.
const UNWANTED_AFTER: Duration = Duration::from_secs(600);

impl FeedCache {
    fn asked(&self) {
        *self.1.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    fn wanted(&self) -> bool {
        self.1.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|at| at.elapsed() < UNWANTED_AFTER)
    }
}

/// CVX codes of the vaccines, as SMART Scheduling Links expects.
fn cvx(vaccine: &str) -> Option<(&'static str, &'static str)> {
    Some(match vaccine {
        "pfizer" => ("208", "Pfizer-BioNTech COVID-19 Vaccine"),
        "moderna" => ("207", "Moderna COVID-19 Vaccine"),
        "astrazeneca" => ("210", "AstraZeneca COVID-19 Vaccine"),
        "novavax" => ("211", "Novavax COVID-19 Vaccine"),
        "janssen" => ("212", "Janssen COVID-19 Vaccine"),
        _ => return None,
    })
}

fn ndjson(resources: &[Value]) -> String {
    resources.iter().map(|r| format!("{r}\n")).collect()
}

/// Reads every centre (pages of the directory's memory), then assembles
/// the files on a blocking thread: at tens of thousands of centres that is
/// seconds of CPU, which must not hold up the requests of a worker thread.
async fn build(state: &AppState) -> Result<Feed, Problem> {
    let mut centres = Vec::new();
    let mut token = String::new();
    loop {
        let request = state.backends.request(ListCentresRequest { page_token: token.clone(), page_size: 1000 });
        let page = state.backends.centres.clone().list_centres(request).await?.into_inner();
        centres.extend(page.centres);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    tokio::task::spawn_blocking(move || assemble(&centres)).await.map_err(|error| {
        tracing::error!(%error, "assembling the open-data feed failed");
        Problem::new(crate::problem::ProblemKind::Internal, "the open-data feed could not be built")
    })
}

fn assemble(centres: &[directory::Centre]) -> Feed {
    let mut locations = Vec::new();
    let mut schedules = Vec::new();
    let mut slots = Vec::new();
    for centre in centres {
        locations.push(location(centre));
        for vaccine in &centre.vaccines {
            let schedule_id = format!("{}-{vaccine}", centre.id);
            let mut schedule = json!({
                "resourceType": "Schedule",
                "id": schedule_id,
                "actor": [{"reference": format!("Location/{}", centre.id)}],
                "serviceType": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/service-type",
                    "code": "57",
                    "display": "Immunization"
                }]}],
            });
            if let Some((code, display)) = cvx(vaccine) {
                schedule["extension"] = json!([{
                    "url": VACCINE_PRODUCT,
                    "valueCoding": {"system": "http://hl7.org/fhir/sid/cvx", "code": code, "display": display}
                }]);
            }
            schedules.push(schedule);
            for day in centre.days.iter().filter(|d| &d.vaccine == vaccine) {
                let Some(end) = end_of(&day.date, &day.time_of_day) else { continue };
                slots.push(json!({
                    "resourceType": "Slot",
                    "id": format!("{schedule_id}-{}-{}", day.date, day.time_of_day),
                    "schedule": {"reference": format!("Schedule/{schedule_id}")},
                    "status": "free",
                    "start": day.next_slot,
                    "end": end,
                    "extension": [
                        {"url": BOOKING_LINK, "valueUrl": format!("/api/v1/centres/{}/slots", centre.id)},
                        {"url": CAPACITY, "valueInteger": day.places_left}
                    ]
                }));
            }
        }
    }
    let (locations, schedules, slots) = (ndjson(&locations), ndjson(&schedules), ndjson(&slots));
    let etag = crate::caching::etag_of(format!("{locations}\n{schedules}\n{slots}").as_bytes());
    Feed { transaction_time: Utc::now().to_rfc3339(), locations, schedules, slots, etag }
}

/// When a part of a local day ends, in RFC 3339.
fn end_of(date: &str, time_of_day: &str) -> Option<String> {
    use chrono::TimeZone;
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let (_, to) = creneau_kit::vocab::TimeOfDay::parse(time_of_day).ok()?.hours();
    let local = if to == 24 { date.succ_opt()?.and_hms_opt(0, 0, 0)? } else { date.and_hms_opt(to, 0, 0)? };
    let zone = creneau_kit::vocab::calendar::ZONE;
    Some(zone.from_local_datetime(&local).earliest()?.with_timezone(&Utc).to_rfc3339())
}

fn location(c: &directory::Centre) -> Value {
    json!({
        "resourceType": "Location",
        "id": c.id,
        "name": c.name,
        "telecom": if c.phone.is_empty() { json!([]) } else { json!([{"system": "phone", "value": c.phone}]) },
        "address": {
            "line": [c.address],
            "city": c.city,
            "postalCode": c.postcode,
            "district": c.department,
            "country": "FR"
        },
        "position": {"latitude": c.lat, "longitude": c.lon},
        "identifier": [{"system": "urn:creneau:centre", "value": c.id}]
    })
}

/// Rebuilds the feed every [`REBUILD_EVERY`] until dropped.
/// A large directory's feed takes a while to build: it is rebuilt at most
/// a tenth of the time, so it never costs more than a tenth of a core, and
/// only while aggregators ask for it.
pub async fn keep_built(state: AppState) {
    loop {
        if !state.feed.wanted() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let began = std::time::Instant::now();
        match build(&state).await {
            Ok(feed) => *state.feed.0.write().await = Some(Arc::new(feed)),
            Err(problem) => tracing::warn!(?problem, "the open-data feed could not be rebuilt"),
        }
        tokio::time::sleep(REBUILD_EVERY.max(began.elapsed() * 10)).await;
    }
}

/// The latest feed; the first request before any was built builds one.
/// Asking keeps it rebuilt in the background.
async fn current(state: &AppState) -> Result<Arc<Feed>, Problem> {
    state.feed.asked();
    if let Some(feed) = state.feed.0.read().await.as_ref() {
        return Ok(feed.clone());
    }
    let feed = Arc::new(build(state).await?);
    *state.feed.0.write().await = Some(feed.clone());
    Ok(feed)
}

fn cacheable(headers: &HeaderMap, feed: &Feed, content_type: &'static str, body: String) -> Response {
    crate::caching::validated(headers, body.into(), content_type, "public, max-age=30", &feed.etag)
}

fn base(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}/api/v1/open-data")
}

pub async fn manifest(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let feed = current(&state).await?;
    let base = base(&headers);
    let body = json!({
        "transactionTime": feed.transaction_time,
        "request": format!("{base}/$bulk-publish"),
        "output": [
            {"type": "Location", "url": format!("{base}/locations.ndjson")},
            {"type": "Schedule", "url": format!("{base}/schedules.ndjson")},
            {"type": "Slot", "url": format!("{base}/slots.ndjson")}
        ],
        "error": []
    });
    Ok(cacheable(&headers, &feed, "application/json", body.to_string()))
}

pub async fn locations(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let feed = current(&state).await?;
    let body = feed.locations.clone();
    Ok(cacheable(&headers, &feed, "application/fhir+ndjson", body))
}

pub async fn schedules(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let feed = current(&state).await?;
    let body = feed.schedules.clone();
    Ok(cacheable(&headers, &feed, "application/fhir+ndjson", body))
}

pub async fn slots(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let feed = current(&state).await?;
    let body = feed.slots.clone();
    Ok(cacheable(&headers, &feed, "application/fhir+ndjson", body))
}
