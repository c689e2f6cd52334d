//! Open availability data for aggregators, so nobody needs to scrape: the
//! SMART Scheduling Links format — a `$bulk-publish` manifest pointing at
//! NDJSON files of FHIR Location, Schedule and Slot resources. Built from
//! the live directory and inventory, kept for a short while, served with
//! an ETag and Cache-Control so aggregators poll cheaply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use chrono::Utc;
use creneau_proto::centre_directory::v1::{self as directory, ListCentresRequest};
use creneau_proto::slot_inventory::v1::ListSlotsRequest;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::problem::Problem;
use crate::startup::AppState;

/// How long a generated feed is served before it is rebuilt.
const FRESH_FOR: Duration = Duration::from_secs(30);
/// Slots published in the feed: the coming two weeks.
const DAYS: u32 = 14;
const BOOKING_LINK: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link";
const CAPACITY: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity";
const VACCINE_PRODUCT: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/vaccine-product";

/// One generation of the feed: the three NDJSON files and their ETag.
#[derive(Clone)]
pub struct Feed {
    built: Instant,
    transaction_time: String,
    locations: String,
    schedules: String,
    slots: String,
    etag: String,
}

#[derive(Clone, Default)]
pub struct FeedCache(Arc<Mutex<Option<Feed>>>);

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

async fn build(state: &AppState) -> Result<Feed, Problem> {
    let mut locations = Vec::new();
    let mut schedules = Vec::new();
    let mut slots = Vec::new();
    let mut token = String::new();
    loop {
        let request = state.backends.request(ListCentresRequest { page_token: token.clone(), page_size: 1000 });
        let page = state.backends.centres.clone().list_centres(request).await?.into_inner();
        for centre in &page.centres {
            locations.push(location(centre));
            let listed = state
                .backends
                .slots
                .clone()
                .list_slots(state.backends.request(ListSlotsRequest {
                    centre_id: centre.id.clone(),
                    from: String::new(),
                    days: DAYS,
                    available_only: false,
                }))
                .await?
                .into_inner();
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
                for slot in listed.slots.iter().filter(|s| &s.vaccine == vaccine && s.status == "open") {
                    let remaining = slot.capacity.saturating_sub(slot.booked).saturating_sub(slot.held);
                    slots.push(json!({
                        "resourceType": "Slot",
                        "id": slot.id,
                        "schedule": {"reference": format!("Schedule/{schedule_id}")},
                        "status": if remaining > 0 { "free" } else { "busy" },
                        "start": slot.starts_at,
                        "end": slot.ends_at,
                        "extension": [
                            {"url": BOOKING_LINK, "valueUrl": format!("/api/v1/centres/{}/slots", centre.id)},
                            {"url": CAPACITY, "valueInteger": remaining}
                        ]
                    }));
                }
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let (locations, schedules, slots) = (ndjson(&locations), ndjson(&schedules), ndjson(&slots));
    let etag = crate::caching::etag_of(format!("{locations}\n{schedules}\n{slots}").as_bytes());
    Ok(Feed { built: Instant::now(), transaction_time: Utc::now().to_rfc3339(), locations, schedules, slots, etag })
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

async fn current(state: &AppState) -> Result<Feed, Problem> {
    let mut cached = state.feed.0.lock().await;
    if let Some(feed) = cached.as_ref()
        && feed.built.elapsed() < FRESH_FOR
    {
        return Ok(feed.clone());
    }
    let feed = build(state).await?;
    *cached = Some(feed.clone());
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
