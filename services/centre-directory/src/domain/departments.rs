//! Places per département, for the waiting room: it admits no more citizens
//! for a département than it has places, and tells those waiting for one
//! with nothing left when its next centre opens.

use chrono::{DateTime, Utc};
use creneau_kit::vocab::calendar::local_day;

use super::availability::Availability;
use super::search::{HORIZON_DAYS, Window};
use super::{Directory, SearchQuery};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentPlaces {
    pub department: String,
    pub places_left: u32,
    /// Unix seconds.
    pub next_slot: Option<i64>,
    /// Unix seconds: a centre there is published then.
    pub next_publication: Option<i64>,
}

/// Every département with a centre visible at `now` or later, by code.
pub fn department_places(
    directory: &Directory,
    availability: &Availability,
    now: DateTime<Utc>,
) -> Vec<DepartmentPlaces> {
    let today = local_day(now);
    let all = SearchQuery::week_filter(Window { first_day: today, last_day: today + HORIZON_DAYS - 1 }, now);
    let now = now.timestamp();
    let mut found: Vec<DepartmentPlaces> = directory
        .departments()
        .filter_map(|(code, centres)| {
            let mut d = DepartmentPlaces {
                department: code.to_owned(),
                places_left: 0,
                next_slot: None,
                next_publication: None,
            };
            let mut any = false;
            for c in centres.filter(|c| now < c.until) {
                any = true;
                if c.from > now {
                    d.next_publication = d.next_publication.into_iter().chain([c.from]).min();
                    continue;
                }
                let s = availability.summary_of(c.number, &all);
                d.places_left = d.places_left.saturating_add(s.places_left);
                d.next_slot = d.next_slot.into_iter().chain(s.next_slot).min();
            }
            any.then_some(d)
        })
        .collect();
    found.sort_by(|a, b| a.department.cmp(&b.department));
    found
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use creneau_kit::vocab::{TimeOfDay, Vaccine};

    use super::*;
    use crate::domain::availability::DayPart;
    use crate::domain::{NewCentre, Numbers};

    fn centre(id: &str, department: &str, publish_at: DateTime<Utc>) -> NewCentre {
        NewCentre::parse(
            id,
            "Centre",
            "1 rue A",
            "57000",
            "Metz",
            department,
            49.1,
            6.17,
            &["pfizer".to_owned()],
            true,
            "",
            &publish_at.to_rfc3339(),
        )
        .unwrap()
    }

    #[test]
    fn places_are_summed_per_departement_with_the_next_publication() {
        let now: DateTime<Utc> = "2026-11-26T08:00:00Z".parse().unwrap();
        let numbers = Numbers::shared();
        let (mut d, mut a) = (Directory::new(numbers.clone()), Availability::new(numbers));
        let today = local_day(now);
        let part = |day, places_left, next_slot: DateTime<Utc>| DayPart {
            day,
            vaccine: Vaccine::Pfizer,
            time_of_day: TimeOfDay::Morning,
            places_left,
            next_slot: next_slot.timestamp(),
        };
        d.upsert(centre("metz", "57", now - Duration::days(1)));
        d.upsert(centre("thionville", "57", now - Duration::days(1)));
        d.upsert(centre("sarrebourg", "57", now + Duration::hours(2)));
        d.upsert(centre("sarrebourg-2", "57", now + Duration::hours(5)));
        let mut closed = centre("nancy-old", "54", now - Duration::days(9));
        closed.closes_at = Some(now - Duration::days(1));
        d.upsert(closed);
        d.upsert(centre("nancy", "54", now + Duration::days(1)));
        let mut gone = centre("epinal", "88", now - Duration::days(9));
        gone.closes_at = Some(now);
        d.upsert(gone);
        a.set("metz", vec![part(today, 3, now + Duration::hours(1)), part(today + 40, 5, now + Duration::days(40))]);
        a.set(
            "thionville",
            vec![part(today + 1, 2, now + Duration::hours(26)), part(today, 9, now - Duration::hours(1))],
        );
        a.set("sarrebourg", vec![part(today + 1, 50, now + Duration::hours(25))]);
        a.set("nancy-old", vec![part(today + 1, 50, now + Duration::hours(25))]);

        let found = department_places(&d, &a, now);
        assert_eq!(
            found,
            [
                DepartmentPlaces {
                    department: "54".into(),
                    places_left: 0,
                    next_slot: None,
                    next_publication: Some((now + Duration::days(1)).timestamp()),
                },
                DepartmentPlaces {
                    department: "57".into(),
                    // Started parts and unpublished centres do not count.
                    places_left: 10,
                    next_slot: Some((now + Duration::hours(1)).timestamp()),
                    next_publication: Some((now + Duration::hours(2)).timestamp()),
                },
            ],
            "88's only centre closed at now"
        );
    }
}
