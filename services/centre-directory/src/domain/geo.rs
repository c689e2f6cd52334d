/// A place on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

impl Point {
    pub fn new(lat: f64, lon: f64) -> Option<Self> {
        (lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some(Self { lat, lon })
    }
}

pub(super) const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance (haversine).
pub fn distance_km(a: Point, b: Point) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = (b.lat - a.lat).to_radians();
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// The latitude/longitude box that contains every point within
/// `radius_km` of `centre`: an index-friendly first cut before the exact
/// distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lon: f64,
    pub max_lon: f64,
}

impl BoundingBox {
    pub fn around(centre: Point, radius_km: f64) -> Self {
        let dlat = (radius_km / EARTH_RADIUS_KM).to_degrees();
        let cos = centre.lat.to_radians().cos().max(1e-6);
        let dlon = (radius_km / (EARTH_RADIUS_KM * cos)).to_degrees().min(180.0);
        Self {
            min_lat: (centre.lat - dlat).max(-90.0),
            max_lat: (centre.lat + dlat).min(90.0),
            min_lon: (centre.lon - dlon).max(-180.0),
            max_lon: (centre.lon + dlon).min(180.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paris_to_lyon_is_about_392_km() {
        let paris = Point::new(48.8566, 2.3522).unwrap();
        let lyon = Point::new(45.7640, 4.8357).unwrap();
        let d = distance_km(paris, lyon);
        assert!((d - 391.5).abs() < 2.0, "{d}");
        assert_eq!(distance_km(paris, paris), 0.0);
    }

    #[test]
    fn the_box_contains_the_circle() {
        let metz = Point::new(49.1193, 6.1757).unwrap();
        let b = BoundingBox::around(metz, 30.0);
        for bearing in 0..36 {
            let angle = f64::from(bearing * 10).to_radians();
            // A point just inside 30 km in each direction.
            let p = Point::new(
                metz.lat + (29.9 / 111.2) * angle.cos(),
                metz.lon + (29.9 / (111.2 * metz.lat.to_radians().cos())) * angle.sin(),
            )
            .unwrap();
            assert!(distance_km(metz, p) < 30.0);
            assert!(p.lat >= b.min_lat && p.lat <= b.max_lat && p.lon >= b.min_lon && p.lon <= b.max_lon);
        }
    }

    #[test]
    fn coordinates_are_range_checked() {
        assert!(Point::new(91.0, 0.0).is_none());
        assert!(Point::new(0.0, f64::NAN).is_none());
    }
}
