//! gRPC transport of the centre directory: maps requests to the domain
//! and answers from memory; only writes reach the database.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use creneau_kit::errors;
use creneau_proto::centre_directory::v1::{self as pb, centre_directory_server::CentreDirectory};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use creneau_kit::vocab::Vaccine;

use crate::domain::availability::{DayPart, Summary};
use crate::domain::departments;
use crate::domain::search::Window;
use crate::domain::{CentreId, DirectoryError, NewCentre, RawSearch, SearchQuery, import};
use crate::memory::Memory;
use crate::storage;

/// The national file is a few MiB.
pub(crate) const MAX_IMPORT_BYTES: usize = 32 << 20;

pub struct CentreDirectoryService {
    db: DatabaseConnection,
    memory: Arc<Memory>,
}

impl CentreDirectoryService {
    pub fn new(db: DatabaseConnection, memory: Arc<Memory>) -> Self {
        Self { db, memory }
    }

    /// Answers from memory need it loaded: until then, UNAVAILABLE (the
    /// caller retries elsewhere) rather than an empty directory.
    fn loaded(&self) -> Result<(), Status> {
        self.memory
            .ready()
            .map_err(|why| errors::status(tonic::Code::Unavailable, creneau_kit::errors::reason::UNAVAILABLE, why))
    }

    fn as_of(&self) -> Option<String> {
        self.memory.position().as_of.map(|t| t.to_rfc3339())
    }
}

fn to_status(error: DirectoryError) -> Status {
    match error {
        DirectoryError::Invalid(_) | DirectoryError::UnknownPostcode(_) => errors::invalid_argument(error.to_string()),
        DirectoryError::NotFound(_) => errors::not_found(error.to_string()),
        DirectoryError::Storage(err) => creneau_kit::db::status(&err),
    }
}

fn instant(unix: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp(unix, 0).map(|t| t.to_rfc3339())
}

fn to_pb(c: &NewCentre, distance: Option<f64>, availability: Summary) -> pb::Centre {
    pb::Centre {
        id: c.id.as_str().to_owned(),
        name: c.name.to_string(),
        address: c.address.to_string(),
        postcode: c.postcode.to_string(),
        city: c.city.to_string(),
        department: c.department.to_string(),
        lat: c.location.lat,
        lon: c.location.lon,
        vaccines: c.vaccines.iter().map(|v| v.code().to_owned()).collect(),
        accessible: c.accessible,
        phone: c.phone.to_string(),
        publish_at: c.publish_at.to_rfc3339(),
        distance_km: distance.map(|d| (d * 100.0).round() / 100.0),
        next_slot: availability.next_slot.and_then(instant),
        available_slots_7d: availability.places_left,
        closes_at: c.closes_at.map(|t| t.to_rfc3339()),
        insee: c.insee.as_deref().map(str::to_owned),
        days: Vec::new(),
    }
}

/// Open data publishes two weeks.
const OPEN_DATA_DAYS: i32 = 14;

fn days_to_pb(parts: impl Iterator<Item = DayPart>, now: DateTime<Utc>) -> Vec<pb::DayAvailability> {
    let today = creneau_kit::vocab::calendar::local_day(now);
    parts
        .filter(|p| (today..today + OPEN_DATA_DAYS).contains(&p.day) && p.next_slot > now.timestamp())
        .filter_map(|p| {
            Some(pb::DayAvailability {
                date: creneau_kit::vocab::calendar::date_of_day(p.day)?.to_string(),
                vaccine: p.vaccine.code().to_owned(),
                time_of_day: p.time_of_day.code().to_owned(),
                places_left: p.places_left,
                next_slot: instant(p.next_slot)?,
            })
        })
        .collect()
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
        self.loaded()?;
        let page = {
            let (directory, places, availability) =
                (self.memory.directory(), self.memory.places(), self.memory.availability());
            query.run(&directory, &places, &availability, now).map_err(to_status)?
        };
        let centres = page.centres.iter().map(|f| to_pb(&f.centre, f.distance_km, f.availability)).collect();
        Ok(Response::new(pb::SearchCentresResponse { centres, total: page.total, availability_as_of: self.as_of() }))
    }

    #[tracing::instrument(skip_all, fields(centre_id = %request.get_ref().id))]
    async fn get_centre(&self, request: Request<pb::GetCentreRequest>) -> Result<Response<pb::Centre>, Status> {
        let id = CentreId::parse(&request.into_inner().id).map_err(to_status)?;
        self.loaded()?;
        let now = Utc::now();
        let week = Window::week(now);
        let filter = SearchQuery::week_filter(week, now);
        let directory = self.memory.directory();
        let centre = directory
            .get(id.as_str())
            .filter(|c| c.is_published(now))
            .ok_or_else(|| to_status(DirectoryError::NotFound(id.as_str().to_owned())))?;
        let summary = self.memory.availability().summary(id.as_str(), &filter);
        Ok(Response::new(to_pb(centre, None, summary)))
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
        self.loaded()?;
        // The token is the last id of the previous page: stable under inserts.
        let now = Utc::now();
        let filter = SearchQuery::week_filter(Window::week(now), now);
        let (directory, availability) = (self.memory.directory(), self.memory.availability());
        let page: Vec<pb::Centre> = directory
            .after(&r.page_token)
            .filter(|c| c.is_published(now))
            .take(size as usize)
            .map(|c| pb::Centre {
                days: days_to_pb(availability.parts(c.id.as_str()), now),
                ..to_pb(c, None, availability.summary(c.id.as_str(), &filter))
            })
            .collect();
        let next_page_token = if page.len() == size as usize {
            page.last().map(|c| c.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListCentresResponse { centres: page, next_page_token }))
    }

    #[tracing::instrument(skip_all)]
    async fn department_places(
        &self,
        _request: Request<pb::DepartmentPlacesRequest>,
    ) -> Result<Response<pb::DepartmentPlacesResponse>, Status> {
        self.loaded()?;
        let now = Utc::now();
        let found = {
            let (directory, availability) = (self.memory.directory(), self.memory.availability());
            departments::department_places(&directory, &availability, now)
        };
        let departments = found
            .into_iter()
            .map(|d| pb::DepartmentPlaces {
                department: d.department,
                places_left: d.places_left,
                next_slot: d.next_slot.and_then(instant),
                next_publication: d.next_publication.and_then(instant),
            })
            .collect();
        Ok(Response::new(pb::DepartmentPlacesResponse { departments, availability_as_of: self.as_of() }))
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
            let outcome = storage::import(&self.db, &parsed.centres, now).await.map_err(|e| to_status(e.into()))?;
            // This replica answers with what it wrote at once; the others
            // follow the change feed.
            self.memory.upsert(parsed.centres);
            outcome
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
        centre.insee = c.insee.map(|i| i.trim().to_owned()).filter(|i| i.len() == 5).map(String::into_boxed_str);
        storage::upsert_centre(&self.db, &centre, Utc::now()).await.map_err(|e| to_status(e.into()))?;
        tracing::info!(centre_id = %centre.id.as_str(), "centre saved");
        let answer = to_pb(&centre, None, Summary::default());
        self.memory.upsert([centre]);
        Ok(Response::new(answer))
    }
}
