//! Every centre in memory, found by place: a grid of cells a fraction of a
//! degree wide for "within r km of here", and lists per department. Holds
//! centres before their publication and after their closing too, so that
//! a search at any instant sees exactly those visible then.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};

use rustc_hash::FxHashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use creneau_kit::vocab::Vaccine;

use super::numbers::Numbers;
use super::{BoundingBox, NewCentre, Point};

/// Cells of 0.2° (about 22 km north–south): a 30 km search reads a few.
const CELL_DEGREES: f64 = 0.2;

type Cell = (i32, i32);

fn cell_of(p: Point) -> Cell {
    ((p.lat / CELL_DEGREES).floor() as i32, (p.lon / CELL_DEGREES).floor() as i32)
}

impl NewCentre {
    /// Visible to citizens at `now`.
    pub fn is_published(&self, now: DateTime<Utc>) -> bool {
        self.publish_at <= now && self.closes_at.is_none_or(|closes| closes > now)
    }
}

/// Where postcodes and communes are.
#[derive(Debug, Default)]
pub struct Gazetteer {
    postcodes: HashMap<String, Point>,
    insee: HashMap<String, Point>,
    names: HashMap<String, Point>,
}

impl Gazetteer {
    /// Entries `(postcode, insee, commune name, point)`. The first entry
    /// of a postcode, an INSEE code or a name wins: callers give them in
    /// the order that picks the right one.
    pub fn new(entries: impl IntoIterator<Item = (String, String, String, Point)>) -> Self {
        let mut g = Self::default();
        for (postcode, insee, name, point) in entries {
            g.postcodes.entry(postcode).or_insert(point);
            g.insee.entry(insee.to_uppercase()).or_insert(point);
            g.names.entry(name.to_lowercase()).or_insert(point);
        }
        g
    }

    pub fn postcode(&self, code: &str) -> Option<Point> {
        self.postcodes.get(code).copied()
    }

    /// By INSEE code, else by name (any case).
    pub fn commune(&self, commune: &str) -> Option<Point> {
        self.insee.get(&commune.to_uppercase()).or_else(|| self.names.get(&commune.to_lowercase())).copied()
    }
}

fn unit(p: Point) -> [f64; 3] {
    let (lat, lon) = (p.lat.to_radians(), p.lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn by_name(c: &NewCentre) -> (&str, &str) {
    (&c.name, c.id.as_str())
}

/// What a search asks of every candidate, kept beside it in the grid and
/// the department lists: a wide search weighs tens of thousands of
/// centres, and reading each from its own allocation would cost more than
/// the arithmetic.
#[derive(Debug, Clone)]
struct Listed {
    /// Unix seconds.
    visible_from: i64,
    visible_until: i64,
    accessible: bool,
    /// Bit `i`: offers `Vaccine::ALL[i]`.
    vaccines: u8,
    number: u32,
    centre: Arc<NewCentre>,
}

/// In the grid, with where it is.
#[derive(Debug, Clone)]
struct Located {
    unit: [f64; 3],
    listed: Listed,
}

impl Listed {
    fn of(centre: &Arc<NewCentre>, number: u32) -> Self {
        let vaccines = Vaccine::ALL
            .iter()
            .enumerate()
            .filter(|(_, v)| centre.vaccines.contains(v))
            .fold(0u8, |bits, (i, _)| bits | 1 << i);
        Self {
            visible_from: centre.publish_at.timestamp(),
            visible_until: centre.closes_at.map_or(i64::MAX, |t| t.timestamp()),
            accessible: centre.accessible,
            vaccines,
            number,
            centre: centre.clone(),
        }
    }

    fn candidate(&self, closeness: f64) -> Candidate<'_> {
        Candidate { closeness, number: self.number, centre: &self.centre }
    }
}

/// When a centre is visible (unix seconds, `until` excluded), and its
/// number in the availability.
#[derive(Debug, Clone, Copy)]
pub struct Visible {
    pub number: u32,
    pub from: i64,
    pub until: i64,
}

/// A centre a search found, with how close it is (the larger, the nearer)
/// and its number in the availability.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub closeness: f64,
    pub number: u32,
    pub centre: &'a Arc<NewCentre>,
}

/// Which centres a search wants: visible at `now` (unix seconds), offering
/// the vaccine, with or without step-free access.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub now: i64,
    pub vaccine: Option<Vaccine>,
    pub accessible: Option<bool>,
}

impl Wanted {
    fn admits(&self, c: &Listed) -> bool {
        c.visible_from <= self.now
            && self.now < c.visible_until
            && self.accessible.is_none_or(|a| a == c.accessible)
            && self
                .vaccine
                .is_none_or(|v| Vaccine::ALL.iter().position(|x| *x == v).is_some_and(|i| c.vaccines & (1 << i) != 0))
    }
}

#[derive(Debug)]
struct ById(Arc<NewCentre>);

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        self.0.id.as_str()
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ById {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.as_str().cmp(other.0.id.as_str())
    }
}

#[derive(Debug, Default)]
pub struct Directory {
    numbers: Arc<Numbers>,
    /// By id, each keyed by its own id rather than a copy of it.
    by_id: BTreeSet<ById>,
    grid: FxHashMap<Cell, Vec<Located>>,
    /// Each department's centres by name (then id): the order its
    /// searches list them in.
    departments: FxHashMap<String, Vec<Listed>>,
}

impl Directory {
    /// A directory whose centres are numbered by `numbers`, shared with
    /// the availability it is searched with.
    pub fn new(numbers: Arc<Numbers>) -> Self {
        Self { numbers, ..Self::default() }
    }

    pub fn numbers(&self) -> &Arc<Numbers> {
        &self.numbers
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Adds the centre, or replaces the one with its id.
    pub fn upsert(&mut self, centre: NewCentre) {
        self.remove(centre.id.as_str());
        let centre = Arc::new(centre);
        let listed = Listed::of(&centre, self.numbers.of_shared(centre.id.shared()));
        let located = Located { unit: unit(centre.location), listed: listed.clone() };
        self.grid.entry(cell_of(centre.location)).or_default().push(located);
        let department = self.departments.entry(centre.department.to_uppercase()).or_default();
        let at = department.partition_point(|c| by_name(&c.centre) < by_name(&centre));
        department.insert(at, listed);
        self.by_id.insert(ById(centre));
    }

    pub fn remove(&mut self, id: &str) {
        let Some(ById(old)) = self.by_id.take(id) else { return };
        let cell = cell_of(old.location);
        if let Some(centres) = self.grid.get_mut(&cell) {
            centres.retain(|c| c.listed.centre.id.as_str() != id);
            if centres.is_empty() {
                self.grid.remove(&cell);
            }
        }
        let department = old.department.to_uppercase();
        if let Some(centres) = self.departments.get_mut(&department) {
            centres.retain(|c| c.centre.id.as_str() != id);
            if centres.is_empty() {
                self.departments.remove(&department);
            }
        }
    }

    /// Gives back what the lists grew beyond their length: after a bulk
    /// load, up to half of them.
    pub fn shrink(&mut self) {
        self.grid.values_mut().for_each(Vec::shrink_to_fit);
        self.departments.values_mut().for_each(Vec::shrink_to_fit);
        self.grid.shrink_to_fit();
        self.departments.shrink_to_fit();
    }

    pub fn get(&self, id: &str) -> Option<&Arc<NewCentre>> {
        self.by_id.get(id).map(|c| &c.0)
    }

    /// Centres whose id comes after `after`, in id order.
    pub fn after(&self, after: &str) -> impl Iterator<Item = &Arc<NewCentre>> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.by_id.range::<str, _>((Excluded(after), Unbounded)).map(|c| &c.0)
    }

    /// Centres `wanted` within `radius_km` of `origin`, each with how
    /// close it is (the larger, the nearer), in no particular order.
    pub fn near(&self, origin: Point, radius_km: f64, wanted: Wanted) -> Vec<Candidate<'_>> {
        // A circle on the sphere bulges past the box's longitudes by a
        // fraction of a percent: the margin keeps its edge in.
        let area = BoundingBox::around(origin, radius_km * 1.01 + 0.01);
        let (low, high) = (
            cell_of(Point { lat: area.min_lat, lon: area.min_lon }),
            cell_of(Point { lat: area.max_lat, lon: area.max_lon }),
        );
        // On the unit sphere, the closer two points the larger the dot
        // product of their vectors: ranking and the radius need no
        // trigonometry per centre. Only a centre within a hair of the
        // radius is decided by the exact distance.
        let from = unit(origin);
        let at_radius = (radius_km / super::geo::EARTH_RADIUS_KM).cos();
        let mut found = Vec::new();
        for lat in low.0..=high.0 {
            for lon in low.1..=high.1 {
                for c in self.grid.get(&(lat, lon)).into_iter().flatten() {
                    let closeness = dot(from, c.unit);
                    let c = &c.listed;
                    if closeness < at_radius - 1e-9 || !wanted.admits(c) {
                        continue;
                    }
                    if closeness - at_radius < 1e-9 && super::distance_km(origin, c.centre.location) > radius_km {
                        continue;
                    }
                    found.push(c.candidate(closeness));
                }
            }
        }
        found
    }

    /// Each department's centres, by department code.
    pub fn departments(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = Visible> + '_)> {
        self.departments.iter().map(|(code, centres)| {
            let visible =
                centres.iter().map(|c| Visible { number: c.number, from: c.visible_from, until: c.visible_until });
            (code.as_str(), visible)
        })
    }

    /// A department's centres `wanted`, by name, all equally close.
    pub fn in_department(&self, code: &str, wanted: Wanted) -> Vec<Candidate<'_>> {
        self.departments
            .get(&code.to_uppercase())
            .into_iter()
            .flatten()
            .filter(|c| wanted.admits(c))
            .map(|c| c.candidate(1.0))
            .collect()
    }
}
