//! Where centres stand and where citizens live: France's largest urban
//! areas, weighted by population. Demand follows population more steeply
//! than centres do, so the big cities are where places run out first.

use rand::Rng;

pub struct City {
    pub name: &'static str,
    pub postcode: &'static str,
    pub department: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// Urban area population, thousands.
    pub population: u32,
}

#[rustfmt::skip]
pub const CITIES: &[City] = &[
    City { name: "Paris", postcode: "75001", department: "75", lat: 48.8566, lon: 2.3522, population: 12_600 },
    City { name: "Lyon", postcode: "69001", department: "69", lat: 45.7640, lon: 4.8357, population: 2_300 },
    City { name: "Marseille", postcode: "13001", department: "13", lat: 43.2965, lon: 5.3698, population: 1_900 },
    City { name: "Toulouse", postcode: "31000", department: "31", lat: 43.6047, lon: 1.4442, population: 1_400 },
    City { name: "Bordeaux", postcode: "33000", department: "33", lat: 44.8378, lon: -0.5792, population: 1_300 },
    City { name: "Lille", postcode: "59000", department: "59", lat: 50.6292, lon: 3.0573, population: 1_200 },
    City { name: "Nice", postcode: "06000", department: "06", lat: 43.7102, lon: 7.2620, population: 1_000 },
    City { name: "Nantes", postcode: "44000", department: "44", lat: 47.2184, lon: -1.5536, population: 1_000 },
    City { name: "Strasbourg", postcode: "67000", department: "67", lat: 48.5734, lon: 7.7521, population: 850 },
    City { name: "Montpellier", postcode: "34000", department: "34", lat: 43.6108, lon: 3.8767, population: 800 },
    City { name: "Rennes", postcode: "35000", department: "35", lat: 48.1173, lon: -1.6778, population: 750 },
    City { name: "Grenoble", postcode: "38000", department: "38", lat: 45.1885, lon: 5.7245, population: 700 },
    City { name: "Rouen", postcode: "76000", department: "76", lat: 49.4432, lon: 1.0999, population: 650 },
    City { name: "Toulon", postcode: "83000", department: "83", lat: 43.1242, lon: 5.9280, population: 600 },
    City { name: "Nancy", postcode: "54000", department: "54", lat: 48.6921, lon: 6.1844, population: 500 },
    City { name: "Clermont-Ferrand", postcode: "63000", department: "63", lat: 45.7772, lon: 3.0870, population: 500 },
    City { name: "Tours", postcode: "37000", department: "37", lat: 47.3941, lon: 0.6848, population: 500 },
    City { name: "Saint-Étienne", postcode: "42000", department: "42", lat: 45.4397, lon: 4.3872, population: 500 },
    City { name: "Metz", postcode: "57000", department: "57", lat: 49.1193, lon: 6.1757, population: 400 },
    City { name: "Caen", postcode: "14000", department: "14", lat: 49.1829, lon: -0.3707, population: 450 },
    City { name: "Orléans", postcode: "45000", department: "45", lat: 47.9030, lon: 1.9093, population: 450 },
    City { name: "Dijon", postcode: "21000", department: "21", lat: 47.3220, lon: 5.0415, population: 400 },
    City { name: "Angers", postcode: "49000", department: "49", lat: 47.4784, lon: -0.5632, population: 450 },
    City { name: "Reims", postcode: "51100", department: "51", lat: 49.2583, lon: 4.0317, population: 350 },
    City { name: "Brest", postcode: "29200", department: "29", lat: 48.3904, lon: -4.4861, population: 320 },
    City { name: "Le Mans", postcode: "72000", department: "72", lat: 48.0061, lon: 0.1996, population: 350 },
    City { name: "Limoges", postcode: "87000", department: "87", lat: 45.8336, lon: 1.2611, population: 300 },
    City { name: "Perpignan", postcode: "66000", department: "66", lat: 42.6887, lon: 2.8948, population: 330 },
    City { name: "Besançon", postcode: "25000", department: "25", lat: 47.2378, lon: 6.0241, population: 280 },
    City { name: "Amiens", postcode: "80000", department: "80", lat: 49.8941, lon: 2.2958, population: 300 },
];

/// Centres spread a little flatter than population (small towns get a
/// centre too); citizens follow population more steeply.
pub const CENTRE_SKEW: f64 = 0.8;
pub const DEMAND_SKEW: f64 = 1.2;

/// A city drawn with probability ∝ population^skew.
pub fn pick_city(rng: &mut impl Rng, skew: f64) -> &'static City {
    let weight = |c: &City| f64::from(c.population).powf(skew);
    let total: f64 = CITIES.iter().map(weight).sum();
    let mut x = rng.random_range(0.0..total);
    for city in CITIES {
        x -= weight(city);
        if x <= 0.0 {
            return city;
        }
    }
    &CITIES[CITIES.len() - 1]
}

/// A point up to `km` from the city centre.
pub fn near(rng: &mut impl Rng, city: &City, km: f64) -> (f64, f64) {
    let distance = km * rng.random_range(0.0f64..1.0).sqrt();
    let bearing = rng.random_range(0.0..std::f64::consts::TAU);
    let lat = city.lat + distance / 111.0 * bearing.cos();
    let lon = city.lon + distance / (111.0 * city.lat.to_radians().cos()) * bearing.sin();
    (lat, lon)
}

/// Distance in km between two (lat, lon) points; flat-earth accuracy is
/// plenty at the tens of kilometres a citizen searches.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dy = (a.0 - b.0) * 111.0;
    let dx = (a.1 - b.1) * 111.0 * ((a.0 + b.0) / 2.0).to_radians().cos();
    (dx * dx + dy * dy).sqrt()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn demand_leans_on_the_biggest_cities() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut draws = |skew| (0..10_000).filter(|_| pick_city(&mut rng, skew).name == "Paris").count();
        let (centres, demand) = (draws(CENTRE_SKEW), draws(DEMAND_SKEW));
        assert!(demand > centres, "Paris: {demand} citizens vs {centres} centres per 10,000");
    }

    #[test]
    fn distances_are_those_of_the_map() {
        let (paris, lyon) = (&CITIES[0], &CITIES[1]);
        let d = distance_km((paris.lat, paris.lon), (lyon.lat, lyon.lon));
        assert!((385.0..400.0).contains(&d), "Paris–Lyon as the crow flies is about 392 km: {d}");
    }

    #[test]
    fn points_stay_near_their_city() {
        let mut rng = StdRng::seed_from_u64(4);
        for city in CITIES {
            let point = near(&mut rng, city, 10.0);
            assert!(distance_km(point, (city.lat, city.lon)) <= 10.05, "{}", city.name);
        }
    }
}
