use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use creneau_kit::vocab::calendar::{day_number, local_day};
use creneau_kit::vocab::{DoseKind, TimeOfDay, Vaccine};

use super::availability::{Availability, Filter, Summary};
use super::index::{Candidate, Directory, Gazetteer, Wanted};
use super::{DirectoryError, NewCentre, Point};

pub const DEFAULT_RADIUS_KM: f64 = 30.0;
pub const MAX_RADIUS_KM: f64 = 200.0;
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
const MAX_WINDOW_DAYS: i32 = 62;
/// Availability is known this many days ahead (today included).
pub const HORIZON_DAYS: i32 = 63;

#[derive(Debug, Clone, PartialEq)]
pub enum Near {
    Postcode(String),
    Point(Point),
    /// INSEE code or name.
    Commune(String),
    Department(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Distance,
    Earliest,
}

/// Availability is counted over these local days (inclusive), from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first_day: i32,
    pub last_day: i32,
}

impl Window {
    /// The coming week: today and the six days after.
    pub fn week(now: DateTime<Utc>) -> Self {
        let today = local_day(now);
        Self { first_day: today, last_day: today + 6 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub near: Near,
    pub radius_km: f64,
    pub vaccine: Option<Vaccine>,
    pub accessible: Option<bool>,
    pub sort: Sort,
    pub limit: u32,
    /// 1-based.
    pub page: u32,
    pub window: Window,
    pub dose: Option<DoseKind>,
    pub time_of_day: Option<TimeOfDay>,
}

/// What a search asks, as the transport received it.
#[derive(Debug, Clone, Default)]
pub struct RawSearch<'a> {
    pub postcode: Option<&'a str>,
    pub point: Option<(f64, f64)>,
    pub commune: Option<&'a str>,
    pub department: Option<&'a str>,
    pub radius_km: f64,
    pub vaccine: Option<&'a str>,
    pub accessible: Option<bool>,
    pub sort: &'a str,
    pub limit: u32,
    pub page: u32,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub dose: Option<&'a str>,
    pub time_of_day: Option<&'a str>,
}

fn invalid(message: impl Into<String>) -> DirectoryError {
    DirectoryError::Invalid(message.into())
}

fn date(raw: &str, field: &'static str) -> Result<NaiveDate, DirectoryError> {
    creneau_kit::vocab::calendar::date(raw, field).map_err(|e| invalid(e.to_string()))
}

impl SearchQuery {
    pub fn parse(raw: RawSearch<'_>, now: DateTime<Utc>) -> Result<Self, DirectoryError> {
        let text = |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let places = [
            text(raw.postcode).map(Near::Postcode),
            raw.point
                .map(|(lat, lon)| {
                    Point::new(lat, lon)
                        .map(Near::Point)
                        .ok_or_else(|| invalid("lat must be -90..90 and lon -180..180"))
                })
                .transpose()?,
            text(raw.commune).map(Near::Commune),
            text(raw.department).map(Near::Department),
        ];
        let mut given = places.into_iter().flatten();
        let near = given.next().ok_or_else(|| invalid("a postcode, lat/lon, a commune or a department is required"))?;
        if given.next().is_some() {
            return Err(invalid("give one of postcode, lat/lon, commune or department"));
        }
        match &near {
            Near::Postcode(p) if p.len() != 5 || !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(invalid("postcode must be 5 digits"));
            }
            Near::Department(d) if !(2..=3).contains(&d.len()) || !d.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                return Err(invalid("department must be a department code such as 57, 2A or 974"));
            }
            Near::Commune(c) if c.chars().count() > 100 => return Err(invalid("commune is too long")),
            _ => {}
        }
        let radius_km = if raw.radius_km == 0.0 { DEFAULT_RADIUS_KM } else { raw.radius_km };
        if !radius_km.is_finite() || !(0.0..=MAX_RADIUS_KM).contains(&radius_km) {
            return Err(invalid(format!("radius_km must be between 0 and {MAX_RADIUS_KM}")));
        }
        let vaccine =
            text(raw.vaccine).map(|v| v.parse::<Vaccine>().map_err(|e| invalid(e.to_string()))).transpose()?;
        let sort = match raw.sort.trim() {
            "" | "distance" => Sort::Distance,
            "earliest" => Sort::Earliest,
            other => return Err(invalid(format!("sort must be distance or earliest, not {other:?}"))),
        };
        let limit = match raw.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => return Err(invalid(format!("limit must be 1 to {MAX_LIMIT}"))),
            n => n,
        };
        let page = raw.page.max(1);
        let today = local_day(now);
        let first_day = match raw.from.map(|f| date(f, "from")).transpose()? {
            Some(d) => day_number(d).max(today),
            None => today,
        };
        let last_day = match raw.to.map(|t| date(t, "to")).transpose()? {
            Some(d) => day_number(d),
            None => first_day + 6,
        };
        if !(1..=MAX_WINDOW_DAYS).contains(&(last_day - first_day + 1)) {
            return Err(invalid(format!("to must be on or after from, within {MAX_WINDOW_DAYS} days")));
        }
        if last_day >= today + HORIZON_DAYS {
            return Err(invalid(format!("availability is searched within the next {HORIZON_DAYS} days")));
        }
        let window = Window { first_day, last_day };
        let dose = text(raw.dose).map(|d| DoseKind::parse(&d).map_err(invalid)).transpose()?;
        let time_of_day = text(raw.time_of_day).map(|t| TimeOfDay::parse(&t).map_err(invalid)).transpose()?;
        Ok(Self { near, radius_km, vaccine, accessible: raw.accessible, sort, limit, page, window, dose, time_of_day })
    }
}

/// A centre found, with what the search counted of its availability.
#[derive(Debug, Clone)]
pub struct Found {
    pub centre: Arc<NewCentre>,
    pub distance_km: Option<f64>,
    pub availability: Summary,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub centres: Vec<Found>,
    /// Centres matching, over all pages.
    pub total: u32,
}

impl SearchQuery {
    /// Availability over `window`, every vaccine, dose and time of day.
    pub fn week_filter(window: Window, now: DateTime<Utc>) -> Filter {
        Filter {
            first_day: window.first_day,
            last_day: window.last_day,
            now: now.timestamp(),
            vaccine: None,
            dose: None,
            time_of_day: None,
        }
    }

    /// What availability this search counts.
    pub fn filter(&self, now: DateTime<Utc>) -> Filter {
        Filter {
            first_day: self.window.first_day,
            last_day: self.window.last_day,
            now: now.timestamp(),
            vaccine: self.vaccine,
            dose: self.dose,
            time_of_day: self.time_of_day,
        }
    }

    /// Runs the search over centres visible at `now`: nearest first (by
    /// name in a department), or earliest free slot first; then the page.
    pub fn run(
        &self,
        directory: &Directory,
        places: &Gazetteer,
        availability: &Availability,
        now: DateTime<Utc>,
    ) -> Result<Page, DirectoryError> {
        debug_assert!(Arc::ptr_eq(directory.numbers(), availability.numbers()), "one numbering");
        let wanted = Wanted { now: now.timestamp(), vaccine: self.vaccine, accessible: self.accessible };
        // Candidates, all equally close in a department (where the order is by name).
        let (origin, found): (Option<Point>, Vec<Candidate<'_>>) = match &self.near {
            Near::Department(code) => (None, directory.in_department(code, wanted)),
            near => {
                let origin = match near {
                    Near::Point(p) => *p,
                    Near::Postcode(code) => {
                        places.postcode(code).ok_or_else(|| DirectoryError::UnknownPostcode(code.clone()))?
                    }
                    Near::Commune(name) => {
                        places.commune(name).ok_or_else(|| invalid(format!("unknown commune {name:?}")))?
                    }
                    Near::Department(_) => unreachable!("matched above"),
                };
                (Some(origin), directory.near(origin, self.radius_km, wanted))
            }
        };
        let total = found.len() as u32;
        let filter = self.filter(now);
        let start = ((self.page - 1) as usize).saturating_mul(self.limit as usize);
        let limit = self.limit as usize;
        // Nearest first, then by name (departments), then by id.
        let order = |a: &Candidate<'_>, b: &Candidate<'_>| {
            b.closeness
                .total_cmp(&a.closeness)
                .then_with(|| if origin.is_none() { a.centre.name.cmp(&b.centre.name) } else { Ordering::Equal })
                .then_with(|| a.centre.id.as_str().cmp(b.centre.id.as_str()))
        };
        let page: Vec<(Candidate<'_>, Summary)> = match self.sort {
            Sort::Distance => page_of(found, start, limit, order)
                .into_iter()
                .map(|c| (c, availability.summary_of(c.number, &filter)))
                .collect(),
            Sort::Earliest => by_earliest(found, availability, &filter, (start, limit), origin.is_none(), order),
        };
        let centres = page
            .into_iter()
            .map(|(c, availability)| Found {
                centre: c.centre.clone(),
                distance_km: origin.map(|o| super::distance_km(o, c.centre.location)),
                availability,
            })
            .collect();
        Ok(Page { centres, total })
    }
}

/// Items `start..start + limit` of the ranking by earliest free slot:
/// centres with one first, earliest first, then the others as by `order`.
/// Weighs candidates by the earliest slot each could offer under any
/// filter, nearest first among equals, and stops once none left can reach
/// the page: on a plain search a department of thousands of centres, most
/// opening at the same hour, costs a few dozen summaries. `listed` says the
/// candidates come in `order` (a department's, by name).
fn by_earliest<'a>(
    found: Vec<Candidate<'a>>,
    availability: &Availability,
    filter: &Filter,
    (start, limit): (usize, usize),
    listed: bool,
    order: impl Fn(&Candidate<'a>, &Candidate<'a>) -> Ordering,
) -> Vec<(Candidate<'a>, Summary)> {
    // Ranks as `order` does, except that centres equally near are equal
    // unless listed: those at a page's edge are all weighed.
    let rank = |i: usize, c: &Candidate<'_>| (nearest_first(c.closeness), if listed { i } else { 0 });
    let wanted = start.saturating_add(limit);
    let mut unweighed: BinaryHeap<Reverse<Weighed>> =
        found.iter().enumerate().map(|(i, c)| Reverse((availability.earliest_of(c.number), rank(i, c), i))).collect();
    // The `wanted` best found so far, the last of them on top.
    let mut best: BinaryHeap<(i64, (u64, usize))> = BinaryHeap::with_capacity(wanted + 1);
    let mut with_slot: Vec<(i64, Candidate<'a>, Summary)> = Vec::new();
    let mut without: Vec<Candidate<'a>> = Vec::new();
    while let Some(Reverse((bound, ranked, i))) = unweighed.pop() {
        if best.len() >= wanted && best.peek().is_some_and(|&last| (bound, ranked) > last) {
            break;
        }
        let summary = availability.summary_of(found[i].number, filter);
        match summary.next_slot {
            Some(next) => {
                best.push((next, ranked));
                if best.len() > wanted {
                    best.pop();
                }
                with_slot.push((next, found[i], summary));
            }
            None => without.push(found[i]),
        }
    }
    let earliest = |a: &(i64, Candidate<'a>, Summary), b: &(i64, Candidate<'a>, Summary)| {
        a.0.cmp(&b.0).then_with(|| order(&a.1, &b.1))
    };
    let ranked = with_slot.len();
    let mut page: Vec<(Candidate<'a>, Summary)> =
        page_of(with_slot, start, limit, earliest).into_iter().map(|(_, c, s)| (c, s)).collect();
    // Fewer centres with a slot than the page reaches: every candidate
    // was weighed, and the rest of the page is of those without.
    if ranked < wanted {
        let (skip, room) = (start.saturating_sub(ranked), limit - page.len());
        page.extend(page_of(without, skip, room, order).into_iter().map(|c| (c, Summary::default())));
    }
    page
}

/// A candidate's earliest possible slot, its rank among equals, its index.
type Weighed = (i64, (u64, usize), usize);

/// Orders closeness (the larger, the nearer) nearest first as integers.
fn nearest_first(closeness: f64) -> u64 {
    let bits = closeness.to_bits();
    let ascending = if bits >> 63 == 1 { !bits } else { bits | 1 << 63 };
    !ascending
}

/// Items `start..start + limit` of the ranking `order`, without ranking
/// them all: a wide search finds thousands of centres and shows twenty.
fn page_of<T>(mut items: Vec<T>, start: usize, limit: usize, order: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    let end = start.saturating_add(limit).min(items.len());
    if start >= end {
        return Vec::new();
    }
    if end < items.len() {
        items.select_nth_unstable_by(end - 1, &order);
        items.truncate(end);
    }
    items.sort_by(&order);
    items.drain(..start);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: RawSearch<'_>) -> Result<SearchQuery, DirectoryError> {
        SearchQuery::parse(raw, "2026-11-26T08:00:00Z".parse().unwrap())
    }

    #[test]
    fn needs_exactly_one_place_and_sane_bounds() {
        let q = parse(RawSearch { postcode: Some("57000"), vaccine: Some("pfizer"), ..Default::default() }).unwrap();
        assert_eq!(q.near, Near::Postcode("57000".into()));
        assert_eq!((q.radius_km, q.limit, q.page, q.sort), (DEFAULT_RADIUS_KM, DEFAULT_LIMIT, 1, Sort::Distance));
        assert_eq!(q.window.last_day - q.window.first_day, 6);
        assert!(parse(RawSearch::default()).is_err());
        assert!(parse(RawSearch { postcode: Some("570"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), point: Some((49.0, 6.0)), ..Default::default() }).is_err());
        assert!(parse(RawSearch { commune: Some("Metz"), department: Some("57"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { point: Some((95.0, 6.0)), ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), radius_km: 500.0, ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), vaccine: Some("sputnik"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), limit: 1000, ..Default::default() }).is_err());
        assert!(parse(RawSearch { postcode: Some("57000"), sort: "cheapest", ..Default::default() }).is_err());
        assert!(parse(RawSearch { department: Some("5-7"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { department: Some("57"), dose: Some("third"), ..Default::default() }).is_err());
        assert!(parse(RawSearch { department: Some("57"), time_of_day: Some("night"), ..Default::default() }).is_err());
        let q = parse(RawSearch {
            department: Some("57"),
            dose: Some("second"),
            time_of_day: Some("evening"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((q.dose, q.time_of_day), (Some(DoseKind::Second), Some(TimeOfDay::Evening)));
    }

    #[test]
    fn a_date_range_becomes_the_availability_window() {
        let q = parse(RawSearch {
            department: Some("2A"),
            from: Some("2026-12-01"),
            to: Some("2026-12-03"),
            ..Default::default()
        })
        .unwrap();
        let first = day_number(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(q.window, Window { first_day: first, last_day: first + 2 });
        // A window that starts in the past starts today.
        let q = parse(RawSearch { department: Some("57"), from: Some("2026-01-01"), ..Default::default() }).unwrap();
        assert_eq!(q.window, Window::week("2026-11-26T08:00:00Z".parse().unwrap()));
        // Beyond what availability is kept for.
        assert!(parse(RawSearch { department: Some("57"), from: Some("2027-02-20"), ..Default::default() }).is_err());
        assert!(
            parse(RawSearch {
                department: Some("57"),
                from: Some("2026-12-03"),
                to: Some("2026-12-01"),
                ..Default::default()
            })
            .is_err()
        );
        assert!(parse(RawSearch { department: Some("57"), to: Some("2027-12-01"), ..Default::default() }).is_err());
    }
}

#[cfg(test)]
mod searching {
    //! Searches over a small directory in memory, with no database.
    use std::collections::HashMap;

    use chrono::Duration;
    use creneau_kit::vocab::calendar::local_day;

    use super::*;
    use crate::domain::availability::{DayPart, Doses};

    const NOW: &str = "2026-11-26T08:00:00Z";

    fn now() -> DateTime<Utc> {
        NOW.parse().unwrap()
    }

    fn centre(id: &str, name: &str, lat: f64, lon: f64, vaccines: &[&str], accessible: bool) -> NewCentre {
        let vaccines: Vec<String> = vaccines.iter().map(|v| v.to_string()).collect();
        NewCentre::parse(
            id,
            name,
            "1 rue A",
            "57000",
            "Metz",
            "57",
            lat,
            lon,
            &vaccines,
            accessible,
            "",
            "2026-01-01T00:00:00Z",
        )
        .unwrap()
    }

    /// Metz at the origin; others due east, at about 7.3 km per 0.1° of longitude.
    fn world() -> (Directory, Gazetteer, Availability) {
        let metz = Point::new(49.1193, 6.1757).unwrap();
        let numbers = crate::domain::Numbers::shared();
        let mut d = Directory::new(numbers.clone());
        d.upsert(centre("a-metz", "Zeta", metz.lat, metz.lon, &["pfizer"], true));
        d.upsert(centre("b-east", "Alpha", metz.lat, metz.lon + 0.1, &["pfizer", "moderna"], false));
        d.upsert(centre("c-far", "Mu", metz.lat, metz.lon + 0.4, &["moderna"], true));
        let mut nancy = centre("d-nancy", "Nancy", 48.6921, 6.1844, &["pfizer"], true);
        nancy.department = "54".into();
        d.upsert(nancy);
        let g = Gazetteer::new([
            ("57000".to_owned(), "57463".to_owned(), "Metz".to_owned(), metz),
            ("54000".to_owned(), "54395".to_owned(), "Nancy".to_owned(), Point::new(48.6921, 6.1844).unwrap()),
        ]);
        let mut a = Availability::new(numbers);
        a.set_doses(HashMap::from([
            (Vaccine::Pfizer, Doses { second: true, booster: true }),
            (Vaccine::Moderna, Doses { second: true, booster: false }),
        ]));
        let today = local_day(now());
        let at = |hours: i64| (now() + Duration::hours(hours)).timestamp();
        let part = |day, vaccine, time_of_day, places_left, next_slot| DayPart {
            day,
            vaccine,
            time_of_day,
            places_left,
            next_slot,
        };
        a.set("a-metz", vec![part(today + 3, Vaccine::Pfizer, TimeOfDay::Morning, 4, at(72))]);
        a.set(
            "b-east",
            vec![
                part(today + 1, Vaccine::Moderna, TimeOfDay::Evening, 2, at(34)),
                part(today + 2, Vaccine::Pfizer, TimeOfDay::Morning, 6, at(48)),
            ],
        );
        a.set("c-far", vec![part(today, Vaccine::Moderna, TimeOfDay::Afternoon, 1, at(5))]);
        (d, g, a)
    }

    fn search(raw: RawSearch<'_>) -> Result<Page, DirectoryError> {
        let (d, g, a) = world();
        SearchQuery::parse(raw, now())?.run(&d, &g, &a, now())
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.centres.iter().map(|f| f.centre.id.as_str()).collect()
    }

    #[test]
    fn nearest_first_within_the_radius_with_edges_included() {
        let page = search(RawSearch { postcode: Some("57000"), radius_km: 10.0, ..Default::default() }).unwrap();
        assert_eq!(ids(&page), ["a-metz", "b-east"]);
        assert_eq!(page.total, 2);
        let east = page.centres[1].distance_km.unwrap();
        // Exactly at the radius is in; a hair less excludes it.
        let at_edge = search(RawSearch { postcode: Some("57000"), radius_km: east, ..Default::default() }).unwrap();
        assert_eq!(ids(&at_edge), ["a-metz", "b-east"]);
        let inside =
            search(RawSearch { postcode: Some("57000"), radius_km: east - 0.001, ..Default::default() }).unwrap();
        assert_eq!(ids(&inside), ["a-metz"]);
        let wide = search(RawSearch { point: Some((49.1193, 6.1757)), radius_km: 60.0, ..Default::default() }).unwrap();
        assert_eq!(ids(&wide), ["a-metz", "b-east", "c-far", "d-nancy"]);
        assert!(matches!(
            search(RawSearch { postcode: Some("99999"), ..Default::default() }),
            Err(DirectoryError::UnknownPostcode(_))
        ));
        let by_commune = search(RawSearch { commune: Some("NANCY"), radius_km: 5.0, ..Default::default() }).unwrap();
        assert_eq!(ids(&by_commune), ["d-nancy"]);
        let by_insee = search(RawSearch { commune: Some("57463"), radius_km: 1.0, ..Default::default() }).unwrap();
        assert_eq!(ids(&by_insee), ["a-metz"]);
    }

    #[test]
    fn filters_narrow_the_centres_and_what_is_counted() {
        let near = |vaccine, accessible| RawSearch {
            postcode: Some("57000"),
            radius_km: 60.0,
            vaccine,
            accessible,
            ..Default::default()
        };
        assert_eq!(ids(&search(near(Some("moderna"), None)).unwrap()), ["b-east", "c-far"]);
        assert_eq!(ids(&search(near(None, Some(false))).unwrap()), ["b-east"]);
        assert_eq!(ids(&search(near(Some("pfizer"), Some(true))).unwrap()), ["a-metz", "d-nancy"]);
        let b =
            |raw: RawSearch<'_>| search(raw).unwrap().centres.into_iter().find(|f| f.centre.id.as_str() == "b-east");
        let all = b(near(None, None)).unwrap().availability;
        assert_eq!(all.places_left, 8);
        assert_eq!(b(near(Some("pfizer"), None)).unwrap().availability.places_left, 6);
        let evening = RawSearch { time_of_day: Some("evening"), ..near(None, None) };
        assert_eq!(b(evening).unwrap().availability.places_left, 2);
        let booster = RawSearch { dose: Some("booster"), ..near(None, None) };
        assert_eq!(b(booster).unwrap().availability.places_left, 6, "moderna is no booster here");
        // The window: only tomorrow.
        let tomorrow = (now() + Duration::days(1)).date_naive().to_string();
        let one_day = RawSearch { from: Some(&tomorrow), to: Some(&tomorrow), ..near(None, None) };
        assert_eq!(b(one_day).unwrap().availability.places_left, 2);
    }

    #[test]
    fn earliest_first_puts_centres_without_places_last() {
        let mut raw = RawSearch { postcode: Some("57000"), radius_km: 60.0, sort: "earliest", ..Default::default() };
        assert_eq!(ids(&search(raw.clone()).unwrap()), ["c-far", "b-east", "a-metz", "d-nancy"]);
        raw.vaccine = Some("pfizer");
        assert_eq!(ids(&search(raw).unwrap()), ["b-east", "a-metz", "d-nancy"]);
    }

    /// 300 centres close together (some at the same spot) with random
    /// availability, often at the same hour, some of it already started:
    /// whatever the place, filter and page, stopping early ranks exactly as
    /// summarising and sorting every centre would.
    #[test]
    fn earliest_first_stops_early_yet_ranks_as_a_full_sort_would() {
        let numbers = crate::domain::Numbers::shared();
        let (mut d, mut a) = (Directory::new(numbers.clone()), Availability::new(numbers));
        a.set_doses(HashMap::from([(Vaccine::Pfizer, Doses { second: true, booster: false })]));
        let mut seed = 7u64;
        let mut draw = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let today = local_day(now());
        // Listed out of id order, as upserts leave a grid cell.
        for i in 0..300 {
            let id = format!("c{:03}", i * 7919 % 300);
            let (lat, lon) = (49.1 + draw(8) as f64 / 80.0, 6.17 + draw(8) as f64 / 80.0);
            d.upsert(centre(&id, &format!("N{}", draw(40)), lat, lon, &["pfizer", "moderna"], true));
            let parts = (0..draw(5))
                .map(|_| DayPart {
                    day: today + draw(10) as i32,
                    vaccine: [Vaccine::Pfizer, Vaccine::Moderna][draw(2) as usize],
                    time_of_day: TimeOfDay::ALL[draw(3) as usize],
                    places_left: 1 + draw(4) as u32,
                    next_slot: now().timestamp() - 3600 + draw(40) as i64 * 3600,
                })
                .collect();
            a.set(&id, parts);
        }
        let g = Gazetteer::default();
        // Off the grid of spots, so that no two are equally far by one measure and not the other.
        let origin = Point::new(49.1517, 6.2231).unwrap();
        for by_point in [false, true] {
            for (vaccine, time_of_day, dose) in [
                (None, None, None),
                (Some("moderna"), None, None),
                (None, Some("evening"), Some("second")),
                (Some("pfizer"), Some("morning"), None),
            ] {
                for page in 1..=6 {
                    let raw = RawSearch {
                        department: (!by_point).then_some("57"),
                        point: by_point.then_some((origin.lat, origin.lon)),
                        radius_km: 50.0,
                        sort: "earliest",
                        limit: 13,
                        page,
                        vaccine,
                        time_of_day,
                        dose,
                        ..Default::default()
                    };
                    let query = SearchQuery::parse(raw, now()).unwrap();
                    let found = query.run(&d, &g, &a, now()).unwrap();
                    let mut all: Vec<_> = (0..300)
                        .map(|i| d.get(&format!("c{i:03}")).unwrap())
                        .map(|c| {
                            let next = a.summary(c.id.as_str(), &query.filter(now())).next_slot;
                            let near = if by_point { super::super::distance_km(origin, c.location) } else { 0.0 };
                            (next.map_or((1, 0), |n| (0, n)), near, if by_point { "" } else { &c.name }, c.id.as_str())
                        })
                        .collect();
                    all.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)).then(x.2.cmp(y.2)).then(x.3.cmp(y.3)));
                    let expected: Vec<&str> = all.iter().skip((page as usize - 1) * 13).take(13).map(|c| c.3).collect();
                    let asked = format!("point {by_point} {vaccine:?} {time_of_day:?} {dose:?} page {page}");
                    assert_eq!(ids(&found), expected, "{asked}");
                    assert_eq!(found.total, 300);
                }
            }
        }
    }

    #[test]
    fn closeness_orders_as_integers_nearest_first() {
        let ranks: Vec<u64> = [1.0, 0.999, 0.5, 0.0, -0.5, -1.0].into_iter().map(nearest_first).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
    }

    #[test]
    fn pages_split_the_ranking_and_keep_the_total() {
        let page = |n| RawSearch { postcode: Some("57000"), radius_km: 60.0, limit: 3, page: n, ..Default::default() };
        let first = search(page(1)).unwrap();
        let second = search(page(2)).unwrap();
        let third = search(page(3)).unwrap();
        assert_eq!((ids(&first), first.total), (vec!["a-metz", "b-east", "c-far"], 4));
        assert_eq!((ids(&second), second.total), (vec!["d-nancy"], 4));
        assert!(third.centres.is_empty());
        let department = search(RawSearch { department: Some("57"), ..Default::default() }).unwrap();
        assert_eq!(ids(&department), ["b-east", "c-far", "a-metz"], "by name: Alpha, Mu, Zeta");
        assert!(search(RawSearch { department: Some("2A"), ..Default::default() }).unwrap().centres.is_empty());
    }

    #[test]
    fn publication_and_closing_are_exact_to_the_second() {
        let (mut d, g, a) = world();
        let mut later = centre("e-later", "Later", 49.1193, 6.1757, &["pfizer"], true);
        later.publish_at = now() + Duration::seconds(1);
        later.closes_at = Some(now() + Duration::seconds(61));
        d.upsert(later);
        let query =
            SearchQuery::parse(RawSearch { postcode: Some("57000"), radius_km: 1.0, ..Default::default() }, now())
                .unwrap();
        let at = |d: &Directory, seconds| query.run(d, &g, &a, now() + Duration::seconds(seconds)).unwrap();
        assert_eq!(ids(&at(&d, 0)), ["a-metz"]);
        assert_eq!(ids(&at(&d, 1)), ["a-metz", "e-later"]);
        assert_eq!(ids(&at(&d, 60)), ["a-metz", "e-later"]);
        assert_eq!(ids(&at(&d, 61)), ["a-metz"]);
        // Moved away, it leaves its old place.
        let mut moved = centre("e-later", "Later", 48.6921, 6.1844, &["pfizer"], true);
        moved.publish_at = now();
        d.upsert(moved);
        assert_eq!(ids(&at(&d, 30)), ["a-metz"]);
        assert_eq!(d.len(), 5);
    }
}
