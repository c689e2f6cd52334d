use chrono::{Months, NaiveDate};

use super::{Language, Profile};

/// One way to become eligible, from a date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub code: String,
    pub min_age: Option<u32>,
    pub profession: Option<String>,
    pub requires_condition: bool,
    pub effective_from: NaiveDate,
    pub priority: i32,
    pub reason_fr: String,
    pub reason_en: String,
}

impl Rule {
    /// The first day this rule covers the person, if it ever does.
    fn eligible_from(&self, profile: &Profile) -> Option<NaiveDate> {
        if let Some(profession) = &self.profession
            && profile.profession.as_ref() != Some(profession)
        {
            return None;
        }
        if self.requires_condition && profile.conditions.is_empty() {
            return None;
        }
        let of_age = match self.min_age {
            // A person born on 29 February comes of age on 28 February in
            // common years (chrono clamps to the month's last day).
            Some(age) => profile.birth_date.checked_add_months(Months::new(age * 12))?,
            None => profile.birth_date,
        };
        Some(of_age.max(self.effective_from))
    }

    pub fn reason(&self, language: Language) -> &str {
        match language {
            Language::Fr => &self.reason_fr,
            Language::En => &self.reason_en,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'r> {
    /// Eligible on the date asked about, under `rule`, since `since`.
    Eligible { rule: &'r Rule, since: NaiveDate },
    /// Eligible later, from `from`, under `rule`.
    Later { rule: &'r Rule, from: NaiveDate },
    /// No rule covers this person.
    Never,
}

impl Decision<'_> {
    pub fn reason(&self, language: Language) -> String {
        match (self, language) {
            (Decision::Eligible { rule, .. }, _) => rule.reason(language).to_owned(),
            (Decision::Later { rule, from }, Language::Fr) => format!(
                "Vous serez éligible à partir du {} : {}",
                from.format("%d/%m/%Y"),
                rule.reason(language).to_lowercase()
            ),
            (Decision::Later { rule, from }, Language::En) => format!(
                "You will be eligible from {}: {}",
                from.format("%Y-%m-%d"),
                rule.reason(language).to_lowercase()
            ),
            (Decision::Never, Language::Fr) => {
                "Aucune règle de la campagne actuelle ne vous rend éligible pour le moment.".to_owned()
            }
            (Decision::Never, Language::En) => "No rule of the current campaign makes you eligible yet.".to_owned(),
        }
    }
}

/// The earliest way the person is (or becomes) eligible; on equal dates
/// the rule with the lowest priority number explains it.
pub fn evaluate<'r>(profile: &Profile, rules: &'r [Rule], as_of: NaiveDate) -> Decision<'r> {
    let best = rules
        .iter()
        .filter_map(|rule| rule.eligible_from(profile).map(|from| (from, rule)))
        .min_by_key(|(from, rule)| (*from, rule.priority));
    match best {
        Some((from, rule)) if from <= as_of => Decision::Eligible { rule, since: from },
        Some((from, rule)) => Decision::Later { rule, from },
        None => Decision::Never,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rules() -> Vec<Rule> {
        let rule = |code: &str, min_age, profession: Option<&str>, requires_condition, from: &str, priority| Rule {
            code: code.into(),
            min_age,
            profession: profession.map(Into::into),
            requires_condition,
            effective_from: d(from),
            priority,
            reason_fr: format!("Règle {code}."),
            reason_en: format!("Rule {code}."),
        };
        vec![
            rule("age_75", Some(75), None, false, "2021-01-18", 10),
            rule("high_risk", None, None, true, "2021-01-18", 20),
            rule("health_50", Some(50), Some("health_professional"), false, "2021-02-06", 30),
        ]
    }

    fn person(birth: &str, conditions: &[&str], profession: Option<&str>) -> Profile {
        Profile {
            birth_date: d(birth),
            conditions: conditions.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>(),
            profession: profession.map(Into::into),
        }
    }

    #[test]
    fn seventy_five_and_over_are_eligible_from_the_opening() {
        let rules = rules();
        let decision = evaluate(&person("1940-03-02", &[], None), &rules, d("2021-01-18"));
        assert!(matches!(decision, Decision::Eligible { since, .. } if since == d("2021-01-18")));
        assert!(matches!(evaluate(&person("1940-03-02", &[], None), &rules, d("2021-01-17")),
            Decision::Later { from, .. } if from == d("2021-01-18")));
    }

    #[test]
    fn younger_people_become_eligible_on_their_birthday() {
        let rules = rules();
        let decision = evaluate(&person("1951-06-10", &[], None), &rules, d("2026-01-01"));
        assert!(matches!(decision, Decision::Later { from, rule } if from == d("2026-06-10") && rule.code == "age_75"));
        // 29 February births come of age on 28 February in common years.
        let leap = evaluate(&person("1952-02-29", &[], None), &rules, d("2027-01-01"));
        assert!(matches!(leap, Decision::Later { from, .. } if from == d("2027-02-28")));
    }

    #[test]
    fn conditions_and_professions_open_other_ways() {
        let rules = rules();
        assert!(matches!(evaluate(&person("1990-01-01", &["dialysis"], None), &rules, d("2021-03-01")),
            Decision::Eligible { rule, .. } if rule.code == "high_risk"));
        assert!(matches!(evaluate(&person("1960-01-01", &[], Some("health_professional")), &rules, d("2021-03-01")),
            Decision::Eligible { rule, .. } if rule.code == "health_50"));
        assert!(matches!(evaluate(&person("1960-01-01", &[], Some("health_professional")), &rules, d("2021-02-01")),
            Decision::Later { from, .. } if from == d("2021-02-06")));
        assert_eq!(
            evaluate(&person("1990-01-01", &[], Some("health_professional")), &rules, d("2026-01-01")),
            Decision::Later { rule: &rules[2], from: d("2040-01-01") }
        );
        assert_eq!(
            evaluate(
                &person("1990-01-01", &[], Some("firefighter")),
                &[rules[1].clone(), rules[2].clone()],
                d("2026-01-01")
            ),
            Decision::Never
        );
    }

    #[test]
    fn reasons_are_translated() {
        let rules = rules();
        let later = evaluate(&person("1951-06-10", &[], None), &rules, d("2026-01-01"));
        assert!(later.reason(Language::Fr).contains("10/06/2026"));
        assert!(later.reason(Language::En).contains("2026-06-10"));
        assert!(Decision::Never.reason(Language::En).starts_with("No rule"));
    }
}
