//! Every centre in memory, found by place: a grid of cells a fraction of a
//! degree wide for "within r km of here", and lists per department. Holds
//! centres before their publication and after their closing too, so that
//! a search at any instant sees exactly those visible then.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

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

#[derive(Debug, Default)]
pub struct Directory {
    by_id: BTreeMap<String, Arc<NewCentre>>,
    grid: HashMap<Cell, Vec<Arc<NewCentre>>>,
    departments: HashMap<String, Vec<Arc<NewCentre>>>,
}

impl Directory {
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
        self.grid.entry(cell_of(centre.location)).or_default().push(centre.clone());
        self.departments.entry(centre.department.to_uppercase()).or_default().push(centre.clone());
        self.by_id.insert(centre.id.as_str().to_owned(), centre);
    }

    pub fn remove(&mut self, id: &str) {
        let Some(old) = self.by_id.remove(id) else { return };
        let cell = cell_of(old.location);
        if let Some(centres) = self.grid.get_mut(&cell) {
            centres.retain(|c| c.id.as_str() != id);
            if centres.is_empty() {
                self.grid.remove(&cell);
            }
        }
        let department = old.department.to_uppercase();
        if let Some(centres) = self.departments.get_mut(&department) {
            centres.retain(|c| c.id.as_str() != id);
            if centres.is_empty() {
                self.departments.remove(&department);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<NewCentre>> {
        self.by_id.get(id)
    }

    /// Centres whose id comes after `after`, in id order.
    pub fn after(&self, after: &str) -> impl Iterator<Item = &Arc<NewCentre>> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.by_id.range::<str, _>((Excluded(after), Unbounded)).map(|(_, c)| c)
    }

    /// Centres within `radius_km` of `origin`, with their distance.
    pub fn near(&self, origin: Point, radius_km: f64) -> Vec<(f64, &Arc<NewCentre>)> {
        let area = BoundingBox::around(origin, radius_km);
        let (low, high) = (
            cell_of(Point { lat: area.min_lat, lon: area.min_lon }),
            cell_of(Point { lat: area.max_lat, lon: area.max_lon }),
        );
        let mut found = Vec::new();
        for lat in low.0..=high.0 {
            for lon in low.1..=high.1 {
                for centre in self.grid.get(&(lat, lon)).into_iter().flatten() {
                    let d = super::distance_km(origin, centre.location);
                    if d <= radius_km {
                        found.push((d, centre));
                    }
                }
            }
        }
        found
    }

    pub fn in_department(&self, code: &str) -> &[Arc<NewCentre>] {
        self.departments.get(&code.to_uppercase()).map_or(&[], Vec::as_slice)
    }
}
