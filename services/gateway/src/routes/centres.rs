use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use creneau_proto::centre_directory::v1::{self as pb, search_centres_request::Near};
use creneau_proto::slot_inventory::v1::ListSlotsRequest;
use serde::{Deserialize, Serialize};

use crate::caching;
use crate::extract::Query;
use crate::problem::Problem;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct SearchParams {
    postcode: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    /// INSEE code or name.
    commune: Option<String>,
    department: Option<String>,
    radius_km: Option<f64>,
    vaccine: Option<String>,
    accessible: Option<bool>,
    /// `distance` or `earliest`.
    sort: Option<String>,
    limit: Option<u32>,
    page: Option<u32>,
    /// Availability window, YYYY-MM-DD.
    from: Option<String>,
    to: Option<String>,
    /// `first`, `second` or `booster`.
    dose: Option<String>,
    /// `morning`, `afternoon` or `evening`.
    time_of_day: Option<String>,
}

#[derive(Serialize)]
pub struct Centre {
    id: String,
    name: String,
    address: String,
    postcode: String,
    city: String,
    department: String,
    lat: f64,
    lon: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_km: Option<f64>,
    vaccines: Vec<String>,
    accessible: bool,
    phone: String,
    next_slot: Option<String>,
    available_slots_7d: u32,
}

impl From<pb::Centre> for Centre {
    fn from(c: pb::Centre) -> Self {
        Self {
            id: c.id,
            name: c.name,
            address: c.address,
            postcode: c.postcode,
            city: c.city,
            department: c.department,
            lat: c.lat,
            lon: c.lon,
            distance_km: c.distance_km,
            vaccines: c.vaccines,
            accessible: c.accessible,
            phone: c.phone,
            next_slot: c.next_slot,
            available_slots_7d: c.available_slots_7d,
        }
    }
}

#[derive(Serialize)]
pub struct CentreList {
    centres: Vec<Centre>,
    /// Centres matching over all pages.
    total: u32,
    page: u32,
    /// Only when the availability shown is older than it should be (the
    /// directory lost its stream): how old, so nobody trusts it blindly.
    /// Fresh answers leave it out, so that their bytes, and their ETag,
    /// only change when the answer does.
    #[serde(skip_serializing_if = "Option::is_none")]
    availability_as_of: Option<String>,
}

/// Availability at most this old is fresh (it follows bookings within a second).
const FRESH: chrono::Duration = chrono::Duration::seconds(3);

fn stale(as_of: Option<String>) -> Option<String> {
    let at = chrono::DateTime::parse_from_rfc3339(as_of.as_deref()?).ok()?;
    (chrono::Utc::now().signed_duration_since(at) > FRESH).then_some(as_of?)
}

#[tracing::instrument(skip_all)]
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<SearchParams>,
) -> Result<Response, Problem> {
    let mut places = Vec::new();
    match (p.lat, p.lon) {
        (Some(lat), Some(lon)) => places.push(Near::Coordinates(pb::Coordinates { lat, lon })),
        (None, None) => {}
        _ => return Err(Problem::validation("lat and lon go together")),
    }
    places.extend(p.postcode.map(Near::Postcode));
    places.extend(p.commune.map(Near::Commune));
    places.extend(p.department.map(Near::Department));
    if places.len() != 1 {
        return Err(Problem::validation("give one of postcode, lat and lon, commune or department"));
    }
    let page = p.page.unwrap_or(1).max(1);
    let request = state.backends.request(pb::SearchCentresRequest {
        near: places.pop(),
        radius_km: p.radius_km.unwrap_or(0.0),
        vaccine: p.vaccine,
        limit: p.limit.unwrap_or(0),
        accessible: p.accessible,
        sort: p.sort.unwrap_or_default(),
        page,
        from: p.from,
        to: p.to,
        dose: p.dose,
        time_of_day: p.time_of_day,
    });
    let found = state.backends.centres.clone().search_centres(request).await?.into_inner();
    let list = CentreList {
        centres: found.centres.into_iter().map(Centre::from).collect(),
        total: found.total,
        page,
        availability_as_of: stale(found.availability_as_of),
    };
    Ok(caching::live_json(&headers, &list))
}

#[tracing::instrument(skip_all, fields(centre_id = %id))]
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let request = state.backends.request(pb::GetCentreRequest { id });
    let centre = state.backends.centres.clone().get_centre(request).await?.into_inner();
    Ok(caching::live_json(&headers, &Centre::from(centre)))
}

#[derive(Deserialize)]
pub struct SlotParams {
    from: Option<String>,
    days: Option<u32>,
}

#[derive(Serialize)]
pub struct Slot {
    id: String,
    starts_at: String,
    ends_at: String,
    vaccine: String,
    remaining: u32,
}

#[derive(Serialize)]
pub struct SlotList {
    slots: Vec<Slot>,
}

#[tracing::instrument(skip_all, fields(centre_id = %id))]
pub async fn slots(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<SlotParams>,
) -> Result<Response, Problem> {
    // Only a published centre's slots are shown: ask the directory first.
    let centre = state
        .backends
        .centres
        .clone()
        .get_centre(state.backends.request(pb::GetCentreRequest { id }))
        .await?
        .into_inner();
    let request = state.backends.request(ListSlotsRequest {
        centre_id: centre.id,
        from: p.from.unwrap_or_default(),
        days: p.days.unwrap_or(0),
        available_only: false,
    });
    let listed = state.backends.slots.clone().list_slots(request).await?.into_inner();
    let list = SlotList {
        slots: listed
            .slots
            .into_iter()
            // A closed slot sells nothing; a held place is not for sale
            // while its hold lives.
            .filter(|s| s.status == "open")
            .map(|s| Slot {
                remaining: s.capacity.saturating_sub(s.booked).saturating_sub(s.held),
                id: s.id,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                vaccine: s.vaccine,
            })
            .collect(),
    };
    Ok(caching::live_json(&headers, &list))
}
