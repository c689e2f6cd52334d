//! gRPC transport of the centre directory.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use creneau_kit::client::GrpcChannel;
use creneau_kit::errors::{self, reason};
use creneau_proto::centre_directory::v1::{self as pb, centre_directory_server::CentreDirectory};
use creneau_proto::slot_inventory::v1::{AvailabilitySummaryRequest, slot_inventory_client::SlotInventoryClient};
use sea_orm::DatabaseConnection;
use tonic::{Code, Request, Response, Status};

use creneau_kit::vocab::{DoseKind, TimeOfDay, Vaccine};

use crate::domain::search::Window;
use crate::domain::{
    BoundingBox, CentreId, DirectoryError, Near, NewCentre, RawSearch, SearchQuery, Sort, distance_km, import,
};
use crate::storage::{self, Candidate, CentreRecord};

/// Availability shown next to a centre covers the coming week.
const AVAILABILITY_DAYS: u32 = 7;
const AVAILABILITY_TIMEOUT: Duration = Duration::from_secs(3);
/// The national file is a few MiB.
const MAX_IMPORT_BYTES: usize = 32 << 20;

pub struct CentreDirectoryService {
    db: DatabaseConnection,
    slots: SlotInventoryClient<GrpcChannel>,
}

impl CentreDirectoryService {
    pub fn new(db: DatabaseConnection, slots: SlotInventoryClient<GrpcChannel>) -> Self {
        Self { db, slots }
    }

    /// Live availability from slot-inventory (never a cache: stale
    /// availability is what sends citizens to centres with nothing left).
    async fn availability(
        &self,
        centres: &[String],
        vaccine: Option<&str>,
        window: Window,
        filters: (Option<DoseKind>, Option<TimeOfDay>),
    ) -> Result<HashMap<String, (Option<String>, u32)>, DirectoryError> {
        if centres.is_empty() {
            return Ok(HashMap::new());
        }
        let mut request = Request::new(AvailabilitySummaryRequest {
            centre_ids: centres.to_vec(),
            from: Some(window.from.to_rfc3339()),
            days: window.days,
            dose: filters.0.map(|d| d.code().to_owned()),
            time_of_day: filters.1.map(|t| match t {
                TimeOfDay::Morning => "morning".to_owned(),
                TimeOfDay::Afternoon => "afternoon".to_owned(),
                TimeOfDay::Evening => "evening".to_owned(),
            }),
            vaccine: vaccine.map(str::to_owned),
        });
        request.set_timeout(AVAILABILITY_TIMEOUT);
        let summary =
            self.slots.clone().availability_summary(request).await.map_err(DirectoryError::Availability)?.into_inner();
        Ok(summary.centres.into_iter().map(|c| (c.centre_id, (c.next_slot, c.available_slots))).collect())
    }
}

fn to_status(error: DirectoryError) -> Status {
    match error {
        DirectoryError::Invalid(_) | DirectoryError::UnknownPostcode(_) => errors::invalid_argument(error.to_string()),
        DirectoryError::NotFound(_) => errors::not_found(error.to_string()),
        DirectoryError::Availability(status) => {
            tracing::warn!(%status, "slot-inventory did not answer");
            errors::status(Code::Unavailable, reason::UNAVAILABLE, "availability is temporarily unavailable")
        }
        DirectoryError::Storage(err) => creneau_kit::db::status(&err),
    }
}

fn to_pb(record: CentreRecord, distance: Option<f64>, availability: Option<&(Option<String>, u32)>) -> pb::Centre {
    let c = record.centre;
    pb::Centre {
        id: c.id,
        name: c.name,
        address: c.address,
        postcode: c.postcode,
        city: c.city,
        department: c.department,
        lat: c.lat,
        lon: c.lon,
        vaccines: record.vaccines,
        accessible: c.accessible,
        phone: c.phone,
        publish_at: c.publish_at.to_rfc3339(),
        distance_km: distance.map(|d| (d * 100.0).round() / 100.0),
        next_slot: availability.and_then(|(next, _)| next.clone()),
        available_slots_7d: availability.map_or(0, |(_, n)| *n),
        closes_at: c.closes_at.map(|t| t.to_rfc3339()),
        insee: c.insee,
    }
}

#[tonic::async_trait]
impl CentreDirectory for CentreDirectoryService {
    #[tracing::instrument(skip_all)]
    async fn search_centres(
        &self,
        request: Request<pb::SearchCentresRequest>,
    ) -> Result<Response<pb::SearchCentresResponse>, Status> {
        let r = request.into_inner();
        use pb::search_centres_request::Near as Wire;
        let mut raw = RawSearch {
            radius_km: r.radius_km,
            vaccine: r.vaccine.as_deref(),
            accessible: r.accessible,
            sort: &r.sort,
            limit: r.limit,
            page: r.page,
            from: r.from.as_deref(),
            to: r.to.as_deref(),
            dose: r.dose.as_deref(),
            time_of_day: r.time_of_day.as_deref(),
            ..Default::default()
        };
        match &r.near {
            Some(Wire::Postcode(p)) => raw.postcode = Some(p),
            Some(Wire::Coordinates(c)) => raw.point = Some((c.lat, c.lon)),
            Some(Wire::Commune(c)) => raw.commune = Some(c),
            Some(Wire::Department(d)) => raw.department = Some(d),
            None => {}
        }
        let now = Utc::now();
        let query = SearchQuery::parse(raw, now).map_err(to_status)?;
        let vaccine = query.vaccine.map(|v| v.code());
        let storage_error = |e: sea_orm::DbErr| to_status(e.into());
        // (distance from the place asked about, centre)
        let mut found: Vec<(Option<f64>, Candidate)> = match &query.near {
            Near::Department(code) => storage::published_in_department(&self.db, code, vaccine, now)
                .await
                .map_err(storage_error)?
                .into_iter()
                .map(|c| (None, c))
                .collect(),
            near => {
                let origin = match near {
                    Near::Point(p) => *p,
                    Near::Postcode(code) => storage::locate_postcode(&self.db, code)
                        .await
                        .map_err(storage_error)?
                        .ok_or_else(|| to_status(DirectoryError::UnknownPostcode(code.clone())))?,
                    Near::Commune(name) => storage::locate_commune(&self.db, name)
                        .await
                        .map_err(storage_error)?
                        .ok_or_else(|| to_status(DirectoryError::Invalid(format!("unknown commune {name:?}"))))?,
                    Near::Department(_) => unreachable!("handled above"),
                };
                let area = BoundingBox::around(origin, query.radius_km);
                let mut nearby: Vec<(Option<f64>, Candidate)> = storage::published_in_box(&self.db, area, vaccine, now)
                    .await
                    .map_err(storage_error)?
                    .into_iter()
                    .filter_map(|c| {
                        let d = distance_km(origin, crate::domain::Point { lat: c.lat, lon: c.lon });
                        (d <= query.radius_km).then_some((Some(d), c))
                    })
                    .collect();
                nearby.sort_by(|a, b| {
                    a.0.unwrap_or(0.0).total_cmp(&b.0.unwrap_or(0.0)).then_with(|| a.1.id.cmp(&b.1.id))
                });
                nearby.truncate(storage::MAX_CANDIDATES as usize);
                nearby
            }
        };
        if let Some(accessible) = query.accessible {
            found.retain(|(_, c)| c.accessible == accessible);
        }
        let total = found.len() as u32;
        let start = ((query.page - 1) * query.limit) as usize;
        // Ranking by earliest slot needs every candidate's availability;
        // ranking by distance only the page's.
        let availability = match query.sort {
            Sort::Earliest => {
                let all: Vec<String> = found.iter().map(|(_, c)| c.id.clone()).collect();
                let availability = self
                    .availability(&all, vaccine, query.window, (query.dose, query.time_of_day))
                    .await
                    .map_err(to_status)?;
                let next = |c: &Candidate| availability.get(&c.id).and_then(|(n, _)| n.clone());
                // Centres with a slot first, earliest first; the rest keep their order.
                found.sort_by(|a, b| match (next(&a.1), next(&b.1)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                });
                found = found.into_iter().skip(start).take(query.limit as usize).collect();
                availability
            }
            Sort::Distance => {
                found = found.into_iter().skip(start).take(query.limit as usize).collect();
                let page: Vec<String> = found.iter().map(|(_, c)| c.id.clone()).collect();
                self.availability(&page, vaccine, query.window, (query.dose, query.time_of_day))
                    .await
                    .map_err(to_status)?
            }
        };
        let distances: HashMap<String, Option<f64>> = found.iter().map(|(d, c)| (c.id.clone(), *d)).collect();
        let ids: Vec<String> = found.into_iter().map(|(_, c)| c.id).collect();
        let page = storage::load_page(&self.db, &ids).await.map_err(|e| to_status(e.into()))?;
        let centres = page
            .into_iter()
            .map(|c| {
                let (d, a) = (distances.get(&c.centre.id).copied().flatten(), availability.get(&c.centre.id));
                to_pb(c, d, a)
            })
            .collect();
        Ok(Response::new(pb::SearchCentresResponse { centres, total }))
    }

    #[tracing::instrument(skip_all, fields(centre_id = %request.get_ref().id))]
    async fn get_centre(&self, request: Request<pb::GetCentreRequest>) -> Result<Response<pb::Centre>, Status> {
        let id = CentreId::parse(&request.into_inner().id).map_err(to_status)?;
        let record = storage::find_published(&self.db, id.as_str(), Utc::now())
            .await
            .map_err(|e| to_status(e.into()))?
            .ok_or_else(|| to_status(DirectoryError::NotFound(id.as_str().to_owned())))?;
        let week = Window { from: Utc::now(), days: AVAILABILITY_DAYS };
        let availability = self
            .availability(std::slice::from_ref(&record.centre.id), None, week, (None, None))
            .await
            .map_err(to_status)?;
        let a = availability.get(&record.centre.id).cloned();
        Ok(Response::new(to_pb(record, None, a.as_ref())))
    }

    #[tracing::instrument(skip_all)]
    async fn list_centres(
        &self,
        request: Request<pb::ListCentresRequest>,
    ) -> Result<Response<pb::ListCentresResponse>, Status> {
        let r = request.into_inner();
        let size = match r.page_size {
            0 => 500,
            n if n > 1000 => return Err(errors::invalid_argument("page_size must be 1 to 1000")),
            n => n,
        };
        // The token is the last id of the previous page: stable under inserts.
        let page = storage::published_page(&self.db, &r.page_token, u64::from(size), Utc::now())
            .await
            .map_err(|e| to_status(e.into()))?;
        let next_page_token = if page.len() == size as usize {
            page.last().map(|c| c.centre.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListCentresResponse {
            centres: page.into_iter().map(|c| to_pb(c, None, None)).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all, fields(bytes = request.get_ref().csv.len()))]
    async fn import_centres(
        &self,
        request: Request<pb::ImportCentresRequest>,
    ) -> Result<Response<pb::ImportCentresResponse>, Status> {
        let r = request.into_inner();
        if r.csv.len() > MAX_IMPORT_BYTES {
            return Err(errors::invalid_argument(format!("the file is over {} MiB", MAX_IMPORT_BYTES >> 20)));
        }
        let vaccines = r
            .default_vaccines
            .iter()
            .map(|v| v.parse::<Vaccine>().map_err(|e| errors::invalid_argument(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        if vaccines.is_empty() {
            return Err(errors::invalid_argument("default_vaccines: the file does not say which vaccines sites offer"));
        }
        let now = Utc::now();
        let parsed = import::parse(&r.csv, &vaccines, now).map_err(to_status)?;
        let rejected: Vec<pb::RejectedRow> = parsed
            .rejected
            .iter()
            .map(|x| pb::RejectedRow { line: x.line, gid: x.gid.clone(), reason: x.reason.clone() })
            .collect();
        let outcome = if r.all_or_nothing && !rejected.is_empty() {
            storage::ImportOutcome::default()
        } else {
            storage::import(&self.db, &parsed.centres, now).await.map_err(|e| to_status(e.into()))?
        };
        tracing::info!(
            created = outcome.created,
            updated = outcome.updated,
            unchanged = outcome.unchanged,
            rejected = rejected.len(),
            "centres imported"
        );
        Ok(Response::new(pb::ImportCentresResponse {
            created: outcome.created,
            updated: outcome.updated,
            unchanged: outcome.unchanged,
            rejected,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_centre(&self, request: Request<pb::UpsertCentreRequest>) -> Result<Response<pb::Centre>, Status> {
        let c = request.into_inner().centre.ok_or_else(|| errors::invalid_argument("centre is required"))?;
        let centre = NewCentre::parse(
            &c.id,
            &c.name,
            &c.address,
            &c.postcode,
            &c.city,
            &c.department,
            c.lat,
            c.lon,
            &c.vaccines,
            c.accessible,
            &c.phone,
            &c.publish_at,
        )
        .map_err(to_status)?;
        let mut centre = centre;
        centre.closes_at = c
            .closes_at
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                creneau_kit::vocab::calendar::instant(t, "closes_at")
                    .map_err(|e| errors::invalid_argument(e.to_string()))
            })
            .transpose()?;
        centre.insee = c.insee.map(|i| i.trim().to_owned()).filter(|i| i.len() == 5);
        let stored = storage::upsert_centre(&self.db, &centre, Utc::now()).await.map_err(|e| to_status(e.into()))?;
        tracing::info!(centre_id = %centre.id.as_str(), "centre saved");
        Ok(Response::new(to_pb(stored, None, None)))
    }
}
