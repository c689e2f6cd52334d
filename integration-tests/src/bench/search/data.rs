//! What the search benchmark imports and what it asks. Every draw comes
//! from a fixed seed, so two runs (before and after a change) import the
//! same centres and send the same requests.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 2021;

const POSTCODES: &str = include_str!("../../../../migrations/data/postcodes.csv");
const HEADER: &str = "gid;nom;arrete_pref_numero;xy_precis;id_adr;adr_num;adr_voie;com_cp;com_insee;com_nom;lat_coor1;long_coor1;structure_siren;structure_type;structure_rais;structure_num;structure_voie;structure_cp;structure_insee;structure_com;_userid_creation;_userid_modification;_edit_datemaj;lieu_accessibilite;rdv_lundi;rdv_mardi;rdv_mercredi;rdv_jeudi;rdv_vendredi;rdv_samedi;rdv_dimanche;rdv;date_fermeture;date_ouverture;rdv_site_web;rdv_tel;rdv_tel2;rdv_modalites;rdv_consultation_prevaccination;centre_svi_repondeur;centre_fermeture;reserve_professionels_sante";

const RADII_KM: [u32; 5] = [5, 10, 20, 30, 50];
const VACCINES: [&str; 3] = ["pfizer", "pfizer", "moderna"];
const DOSES: [&str; 3] = ["first", "second", "booster"];
const TIMES_OF_DAY: [&str; 3] = ["morning", "afternoon", "evening"];

pub struct Place {
    pub postcode: String,
    insee: String,
    city: String,
    department: String,
    lat: f64,
    lon: f64,
}

pub fn places() -> Vec<Place> {
    POSTCODES
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            Some(Place {
                postcode: f.first()?.to_string(),
                insee: f.get(1)?.to_string(),
                city: f.get(2)?.to_string(),
                department: f.get(3)?.to_string(),
                lat: f.get(4)?.parse().ok()?,
                lon: f.get(5)?.parse().ok()?,
            })
        })
        .collect()
}

/// `centres` rows of the national file around the places; one in four
/// without step-free access, so that filtering on it removes something.
/// The file in parts of at most `per_file` centres: an import runs in one
/// transaction within the request timeout.
pub fn national_files(places: &[Place], centres: usize, per_file: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut files = Vec::new();
    let mut csv = format!("{HEADER}\n");
    for gid in 1..=centres {
        if gid > 1 && (gid - 1) % per_file == 0 {
            files.push(std::mem::replace(&mut csv, format!("{HEADER}\n")));
        }
        let p = &places[rng.random_range(0..places.len())];
        let (lat, lon) = (p.lat + rng.random_range(-0.15..0.15), p.lon + rng.random_range(-0.2..0.2));
        csv.push_str(&format!(
            "{gid};Centre de vaccination n°{gid};;t;;{n};Rue de la Santé;{cp};{insee};{city};{lat:.5};{lon:.5};;;;;;;;;1;1;;{access};;;;;;;;t;;2021-01-18;;0{n:09};;;f;f;f;f\n",
            n = gid % 100,
            cp = p.postcode,
            insee = p.insee,
            city = p.city,
            access = if gid % 4 == 0 { "non" } else { "oui" },
        ));
    }
    files.push(csv);
    files
}

fn by_postcode(p: &Place) -> String {
    format!("postcode={}&radius_km=30", p.postcode)
}

fn by_coordinates(p: &Place) -> String {
    format!("lat={}&lon={}&radius_km=10", p.lat, p.lon)
}

fn by_commune(p: &Place) -> String {
    format!("commune={}", p.city.replace(' ', "%20").replace('\'', "%27"))
}

fn by_department(p: &Place) -> String {
    format!("department={}&sort=earliest", p.department)
}

/// One run per kind of place, each over the places in turn: the kinds'
/// costs apart, though the same few answers come back again and again.
type Kind = (&'static str, fn(&Place) -> String);

pub fn per_kind(places: &[Place], requests: usize) -> Vec<(&'static str, Vec<String>)> {
    let kinds: [Kind; 4] = [
        ("postcode, 30 km", by_postcode),
        ("coordinates, 10 km", by_coordinates),
        ("commune (name)", by_commune),
        ("department, earliest", by_department),
    ];
    kinds
        .into_iter()
        .map(|(label, query)| {
            let paths: Vec<String> =
                (0..requests).map(|i| format!("/api/v1/centres?{}", query(&places[(i * 31) % places.len()]))).collect();
            (label, paths)
        })
        .collect()
}

/// Searches as a crowd sends them: postcodes or points anywhere around
/// them, every radius, filters or none, either order, first or second
/// page. Hardly two alike, so no cache of a few answers can carry the run.
pub fn mixed(places: &[Place], requests: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    (0..requests)
        .map(|_| {
            let p = &places[rng.random_range(0..places.len())];
            let mut query = if rng.random_bool(0.6) {
                format!("postcode={}", p.postcode)
            } else {
                let (lat, lon) = (p.lat + rng.random_range(-0.1..0.1), p.lon + rng.random_range(-0.1..0.1));
                format!("lat={lat:.4}&lon={lon:.4}")
            };
            query.push_str(&format!("&radius_km={}", RADII_KM[rng.random_range(0..RADII_KM.len())]));
            if rng.random_bool(0.3) {
                query.push_str(&format!("&vaccine={}", VACCINES[rng.random_range(0..VACCINES.len())]));
            }
            if rng.random_bool(0.25) {
                query.push_str(if rng.random_bool(0.8) { "&accessible=true" } else { "&accessible=false" });
            }
            if rng.random_bool(0.2) {
                query.push_str(&format!("&dose={}", DOSES[rng.random_range(0..DOSES.len())]));
            }
            if rng.random_bool(0.2) {
                query.push_str(&format!("&time_of_day={}", TIMES_OF_DAY[rng.random_range(0..TIMES_OF_DAY.len())]));
            }
            if rng.random_bool(0.3) {
                query.push_str("&sort=earliest");
            }
            let page = if rng.random_bool(0.8) { 1 } else { 2 };
            format!("/api/v1/centres?{query}&limit=20&page={page}")
        })
        .collect()
}

/// A week of slots at centres drawn from all of them.
pub fn slot_lists(centre_ids: &[String], requests: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(SEED + 2);
    (0..requests)
        .map(|_| format!("/api/v1/centres/{}/slots?days=7", centre_ids[rng.random_range(0..centre_ids.len())]))
        .collect()
}
