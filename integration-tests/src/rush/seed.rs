//! The offer on the morning: centres of very different sizes across the
//! country, their first-dose slots over the coming days and, a few weeks
//! later, the second-dose places that go with them. Published through the
//! services' own gRPC APIs, to open at T.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use creneau_proto::centre_directory::v1::{
    Centre, UpsertCentreRequest, centre_directory_client::CentreDirectoryClient,
};
use creneau_proto::slot_inventory::v1::{CreateSlotsRequest, NewSlot, slot_inventory_client::SlotInventoryClient};
use futures::{StreamExt, TryStreamExt};
use rand::Rng;

use super::geography::{CENTRE_SKEW, City, near, pick_city};

/// Centre ids start with this, so the run's places can be counted.
pub const ID_PREFIX: &str = "rush-";
/// Quarter-hours from 08:00 to 16:00 UTC (09:00–17:00 in Paris in winter).
const SLOTS_PER_DAY: usize = 32;
const SLOT_MINUTES: i64 = 15;
/// A centre's lines are sized to sell its places over about a week.
const DAYS_ON_SALE: usize = 7;
/// Second doses 28 days after the first: inside every two-dose vaccine's
/// interval (Pfizer 21–42, Moderna 28–42).
const SECOND_DOSE_AFTER_DAYS: i64 = 28;

pub struct CentrePlan {
    pub id: String,
    pub city: &'static City,
    pub lat: f64,
    pub lon: f64,
    pub vaccine: &'static str,
    /// (start, capacity) of each first-dose slot.
    pub slots: Vec<(DateTime<Utc>, u32)>,
}

impl CentrePlan {
    pub fn places(&self) -> u64 {
        self.slots.iter().map(|s| u64::from(s.1)).sum()
    }
}

pub struct Plan {
    pub centres: Vec<CentrePlan>,
    /// First-dose slots all start before this; second-dose slots after.
    pub second_doses_from: DateTime<Utc>,
}

/// Splits `places` over `centres` with log-normal sizes: a few large
/// vaccinodromes, many small practices.
pub fn plan(centres: usize, places: usize, opens_at: DateTime<Utc>, rng: &mut impl Rng) -> Plan {
    let weights: Vec<f64> = (0..centres).map(|_| standard_normal(rng).exp()).collect();
    let budgets = apportion(places, &weights);
    let first_day = (opens_at + Duration::days(1)).date_naive().and_time(NaiveTime::from_hms_opt(8, 0, 0).unwrap());
    let first_day = first_day.and_utc();
    let centres = budgets
        .into_iter()
        .enumerate()
        .filter(|(_, budget)| *budget > 0)
        .map(|(i, budget)| {
            let city = pick_city(rng, CENTRE_SKEW);
            let (lat, lon) = near(rng, city, 12.0);
            let vaccine = match rng.random_range(0..20) {
                0 => "janssen",
                1..=4 => "moderna",
                _ => "pfizer",
            };
            let lines = budget.div_ceil(SLOTS_PER_DAY * DAYS_ON_SALE).max(1);
            let slots = (0..budget.div_ceil(lines))
                .map(|k| {
                    let day = (k / SLOTS_PER_DAY) as i64;
                    let start = first_day + Duration::days(day) + Duration::minutes((k % SLOTS_PER_DAY) as i64 * 15);
                    (start, lines.min(budget - k * lines) as u32)
                })
                .collect();
            CentrePlan { id: format!("{ID_PREFIX}{i:04}"), city, lat, lon, vaccine, slots }
        })
        .collect();
    Plan { centres, second_doses_from: first_day + Duration::days(21) }
}

/// Largest-remainder rounding: shares of `total` ∝ `weights`, summing to
/// `total` exactly.
fn apportion(total: usize, weights: &[f64]) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut shares: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| (exact[*b] - exact[*b].floor()).total_cmp(&(exact[*a] - exact[*a].floor())));
    let missing = total - shares.iter().sum::<usize>();
    for i in order.into_iter().take(missing) {
        shares[i] += 1;
    }
    shares
}

/// Box–Muller, to keep the dependency list short.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Creates every centre's slots. Nobody sees them before their centre
/// is published.
pub async fn publish_slots(plan: &Plan, slot_inventory: &str) -> anyhow::Result<()> {
    let inventory = SlotInventoryClient::new(creneau_kit::client::channel(slot_inventory)?);
    futures::stream::iter(&plan.centres)
        .map(|c| {
            let mut inventory = inventory.clone();
            let after_days: &[i64] = if c.vaccine == "janssen" { &[0] } else { &[0, SECOND_DOSE_AFTER_DAYS] };
            let slots = after_days
                .iter()
                .flat_map(|after| {
                    c.slots.iter().map(move |(start, capacity)| {
                        let starts = *start + Duration::days(*after);
                        NewSlot {
                            vaccine: c.vaccine.into(),
                            starts_at: starts.to_rfc3339(),
                            ends_at: (starts + Duration::minutes(SLOT_MINUTES)).to_rfc3339(),
                            capacity: *capacity,
                        }
                    })
                })
                .collect();
            async move {
                inventory.create_slots(CreateSlotsRequest { centre_id: c.id.clone(), slots }).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<()>()
        .await
}

/// Publishes every centre, visible from `opens_at`.
pub async fn publish_centres(plan: &Plan, centre_directory: &str, opens_at: DateTime<Utc>) -> anyhow::Result<()> {
    let directory = CentreDirectoryClient::new(creneau_kit::client::channel(centre_directory)?);
    futures::stream::iter(&plan.centres)
        .map(|c| {
            let mut directory = directory.clone();
            let centre = Centre {
                id: c.id.clone(),
                name: format!("Centre de vaccination {} n° {}", c.city.name, &c.id[ID_PREFIX.len()..]),
                address: "1 place de la Mairie".into(),
                postcode: c.city.postcode.into(),
                city: c.city.name.into(),
                department: c.city.department.into(),
                lat: c.lat,
                lon: c.lon,
                vaccines: vec![c.vaccine.into()],
                accessible: true,
                phone: "3975".into(),
                publish_at: opens_at.to_rfc3339(),
                ..Default::default()
            };
            async move {
                directory.upsert_centre(UpsertCentreRequest { centre: Some(centre) }).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<()>()
        .await
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn every_place_is_laid_out_once_on_centres_of_very_different_sizes() {
        let opens_at = Utc::now();
        let plan = plan(1_000, 50_000, opens_at, &mut StdRng::seed_from_u64(5));
        let sizes: Vec<u64> = plan.centres.iter().map(CentrePlan::places).collect();
        assert_eq!(sizes.iter().sum::<u64>(), 50_000);
        let (small, large) = (*sizes.iter().min().unwrap(), *sizes.iter().max().unwrap());
        assert!(large > 20 * small.max(1), "sizes from {small} to {large}");
        for c in &plan.centres {
            for (start, capacity) in &c.slots {
                assert!(*capacity > 0);
                assert!(*start > opens_at && *start < plan.second_doses_from, "{start}");
            }
        }
    }

    #[test]
    fn apportioning_keeps_the_total() {
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0]), [4, 3, 3]);
        assert_eq!(apportion(7, &[0.5, 2.0]).iter().sum::<usize>(), 7);
    }
}
