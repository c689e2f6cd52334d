//! Demo data for a local run: centres in five cities and two weeks of
//! slots, published through the services' own gRPC APIs (never their
//! tables). Idempotent: running it again adds only the missing days.

use chrono::{Duration, NaiveTime, Utc};
use creneau_kit::client;
use creneau_proto::centre_directory::v1::{
    Centre, UpsertCentreRequest, centre_directory_client::CentreDirectoryClient,
};
use creneau_proto::slot_inventory::v1::{CreateSlotsRequest, NewSlot, slot_inventory_client::SlotInventoryClient};

struct DemoCentre {
    id: &'static str,
    name: &'static str,
    address: &'static str,
    postcode: &'static str,
    city: &'static str,
    department: &'static str,
    lat: f64,
    lon: f64,
    vaccines: &'static [&'static str],
    /// People vaccinated in parallel per slot.
    lines: u32,
}

#[rustfmt::skip]
const CENTRES: &[DemoCentre] = &[
    DemoCentre { id: "paris-15-porte-de-versailles", name: "Centre de vaccination Paris Expo – Porte de Versailles", address: "1 place de la Porte de Versailles", postcode: "75015", city: "Paris", department: "75", lat: 48.8322, lon: 2.2876, vaccines: &["pfizer", "moderna"], lines: 8 },
    DemoCentre { id: "paris-11-mairie", name: "Centre de vaccination de la mairie du 11e", address: "12 place Léon Blum", postcode: "75011", city: "Paris", department: "75", lat: 48.8575, lon: 2.3795, vaccines: &["pfizer"], lines: 2 },
    DemoCentre { id: "paris-18-mairie", name: "Centre de vaccination de la mairie du 18e", address: "1 place Jules Joffrin", postcode: "75018", city: "Paris", department: "75", lat: 48.8925, lon: 2.3444, vaccines: &["pfizer", "moderna"], lines: 3 },
    DemoCentre { id: "lyon-gerland", name: "Centre de vaccination de Gerland", address: "350 avenue Jean Jaurès", postcode: "69007", city: "Lyon", department: "69", lat: 45.7266, lon: 4.8327, vaccines: &["pfizer", "moderna"], lines: 6 },
    DemoCentre { id: "lyon-3-mairie", name: "Centre de vaccination de la mairie du 3e", address: "18 rue François Garcin", postcode: "69003", city: "Lyon", department: "69", lat: 45.7600, lon: 4.8462, vaccines: &["pfizer"], lines: 2 },
    DemoCentre { id: "marseille-velodrome", name: "Centre de vaccination Orange Vélodrome", address: "3 boulevard Michelet", postcode: "13008", city: "Marseille", department: "13", lat: 43.2698, lon: 5.3959, vaccines: &["pfizer", "moderna"], lines: 6 },
    DemoCentre { id: "marseille-hotel-de-ville", name: "Centre de vaccination de l'Hôtel de Ville", address: "Quai du Port", postcode: "13002", city: "Marseille", department: "13", lat: 43.2965, lon: 5.3698, vaccines: &["pfizer"], lines: 2 },
    DemoCentre { id: "lille-grand-palais", name: "Centre de vaccination Lille Grand Palais", address: "1 boulevard des Cités Unies", postcode: "59800", city: "Lille", department: "59", lat: 50.6319, lon: 3.0765, vaccines: &["pfizer", "moderna"], lines: 6 },
    DemoCentre { id: "lille-sud", name: "Centre de vaccination de Lille Sud", address: "83 rue du Faubourg des Postes", postcode: "59000", city: "Lille", department: "59", lat: 50.6150, lon: 3.0460, vaccines: &["pfizer"], lines: 2 },
    DemoCentre { id: "metz-parc-des-expositions", name: "Centre de vaccination du Parc des expositions de Metz", address: "Rue de la Grange aux Bois", postcode: "57070", city: "Metz", department: "57", lat: 49.1088, lon: 6.2226, vaccines: &["pfizer", "moderna"], lines: 4 },
    DemoCentre { id: "metz-arsenal", name: "Centre de vaccination de l'Arsenal", address: "3 avenue Ney", postcode: "57000", city: "Metz", department: "57", lat: 49.1156, lon: 6.1718, vaccines: &["pfizer"], lines: 2 },
];

/// Two weeks to book first doses in, and six more so that second doses
/// (up to 42 days later) have room.
const DAYS: i64 = 56;
const SLOT_MINUTES: i64 = 15;
/// 09:00–17:00 in Paris in winter (08:00–16:00 UTC).
const OPEN_UTC: (u32, u32) = (8, 16);

/// Publishes the demo centres and their slots. Returns how many centres.
pub async fn seed(centre_directory_url: &str, slot_inventory_url: &str) -> anyhow::Result<usize> {
    let mut centres = CentreDirectoryClient::new(client::channel(centre_directory_url)?);
    let mut slots = SlotInventoryClient::new(client::channel(slot_inventory_url)?);
    let now = Utc::now();
    for c in CENTRES {
        centres
            .upsert_centre(UpsertCentreRequest {
                centre: Some(Centre {
                    id: c.id.into(),
                    name: c.name.into(),
                    address: c.address.into(),
                    postcode: c.postcode.into(),
                    city: c.city.into(),
                    department: c.department.into(),
                    lat: c.lat,
                    lon: c.lon,
                    vaccines: c.vaccines.iter().map(|v| v.to_string()).collect(),
                    accessible: true,
                    phone: "3975".into(),
                    publish_at: "2021-01-18T07:00:00Z".into(),
                    ..Default::default()
                }),
            })
            .await?;
        let mut new = Vec::new();
        for day in 0..DAYS {
            let date = (now + Duration::days(day)).date_naive();
            let mut start = date.and_time(NaiveTime::from_hms_opt(OPEN_UTC.0, 0, 0).expect("valid")).and_utc();
            let close = date.and_time(NaiveTime::from_hms_opt(OPEN_UTC.1, 0, 0).expect("valid")).and_utc();
            let mut index = 0;
            while start < close {
                if start > now {
                    // Alternate vaccines through the day where a centre has several.
                    let vaccine = c.vaccines[index % c.vaccines.len()];
                    new.push(NewSlot {
                        vaccine: vaccine.into(),
                        starts_at: start.to_rfc3339(),
                        ends_at: (start + Duration::minutes(SLOT_MINUTES)).to_rfc3339(),
                        capacity: c.lines,
                    });
                }
                start += Duration::minutes(SLOT_MINUTES);
                index += 1;
            }
        }
        slots.create_slots(CreateSlotsRequest { centre_id: c.id.into(), slots: new }).await?;
    }
    Ok(CENTRES.len())
}
