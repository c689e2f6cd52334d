use chrono::{Months, NaiveDate};

use super::{Language, Profile};

/// One way to become eligible, from a date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub code: String,
    pub min_age: Option<u32>,
    /// Inclusive: people up to this age (until their next birthday).
    pub max_age: Option<u32>,
    pub profession: Option<String>,
    pub requires_condition: bool,
    /// 1: the primary series; 3: a booster.
    pub dose: u32,
    /// Boosters: days since the last dose.
    pub min_days_since_last_dose: Option<u32>,
    pub effective_from: NaiveDate,
    pub priority: i32,
    pub reason_fr: String,
    pub reason_en: String,
}

/// Defaults for building rules in code and tests.
impl Default for Rule {
    fn default() -> Self {
        Self {
            code: String::new(),
            min_age: None,
            max_age: None,
            profession: None,
            requires_condition: false,
            dose: 1,
            min_days_since_last_dose: None,
            effective_from: NaiveDate::from_ymd_opt(2021, 1, 18).expect("valid"),
            priority: 0,
            reason_fr: String::new(),
            reason_en: String::new(),
        }
    }
}

impl Rule {
    /// The days this rule covers the person, `[from, until)`, if any.
    fn window(
        &self,
        profile: &Profile,
        dose: u32,
        last_dose: Option<NaiveDate>,
    ) -> Option<(NaiveDate, Option<NaiveDate>)> {
        if self.dose != dose {
            return None;
        }
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
            Some(age) => profile.birth_date.checked_add_months(Months::new(age.checked_mul(12)?))?,
            None => profile.birth_date,
        };
        let mut from = of_age.max(self.effective_from);
        if let Some(days) = self.min_days_since_last_dose {
            from = from.max(last_dose?.checked_add_days(chrono::Days::new(u64::from(days)))?);
        }
        // Past the maximum age the rule no longer applies: its window
        // closes on the birthday after `max_age`.
        let until = match self.max_age {
            Some(max) => {
                Some(profile.birth_date.checked_add_months(Months::new(max.checked_add(1)?.checked_mul(12)?))?)
            }
            None => None,
        };
        if until.is_some_and(|until| from >= until) {
            return None;
        }
        Some((from, until))
    }

    fn ages(&self) -> (u32, u32) {
        (self.min_age.unwrap_or(0), self.max_age.unwrap_or(u32::MAX))
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

/// The earliest way the person is (or becomes) eligible for `dose`; on
/// equal dates the rule with the lowest priority number explains it.
pub fn evaluate<'r>(
    profile: &Profile,
    rules: &'r [Rule],
    as_of: NaiveDate,
    dose: u32,
    last_dose: Option<NaiveDate>,
) -> Decision<'r> {
    let windows: Vec<(NaiveDate, Option<NaiveDate>, &Rule)> = rules
        .iter()
        .filter_map(|rule| rule.window(profile, dose, last_dose).map(|(from, until)| (from, until, rule)))
        .collect();
    let now = windows
        .iter()
        .filter(|(from, until, _)| *from <= as_of && until.is_none_or(|u| as_of < u))
        .min_by_key(|(from, _, rule)| (*from, rule.priority));
    if let Some((since, _, rule)) = now {
        return Decision::Eligible { rule, since: *since };
    }
    match windows.iter().filter(|(from, _, _)| *from > as_of).min_by_key(|(from, _, rule)| (*from, rule.priority)) {
        Some((from, _, rule)) => Decision::Later { rule, from: *from },
        None => Decision::Never,
    }
}

/// What is wrong with a rule set, one precise message per problem; empty
/// when it can be published.
pub fn validate(rules: &[Rule], catalogues: &super::Catalogues) -> Vec<String> {
    let mut issues = Vec::new();
    if rules.is_empty() {
        issues.push("a rule set needs at least one rule".to_owned());
    }
    let mut codes = std::collections::HashSet::new();
    for r in rules {
        if r.code.trim().is_empty() {
            issues.push("every rule needs a code".to_owned());
        } else if !codes.insert(r.code.as_str()) {
            issues.push(format!("rule code {:?} appears twice", r.code));
        }
        if let (Some(min), Some(max)) = (r.min_age, r.max_age)
            && min > max
        {
            issues.push(format!("rule {:?}: min_age {min} is above max_age {max}", r.code));
        }
        if let Some(p) = &r.profession
            && !catalogues.professions.contains(p)
        {
            issues.push(format!("rule {:?}: unknown profession {p:?}", r.code));
        }
        match (r.dose, r.min_days_since_last_dose) {
            (1, None) | (3, Some(_)) => {}
            (1, Some(_)) => {
                issues.push(format!("rule {:?}: a delay since the last dose only applies to boosters (dose 3)", r.code))
            }
            (3, None) => issues.push(format!("rule {:?}: a booster rule needs min_days_since_last_dose", r.code)),
            (d, _) => issues.push(format!("rule {:?}: dose must be 1 or 3, not {d}", r.code)),
        }
        if r.reason_fr.trim().is_empty() || r.reason_en.trim().is_empty() {
            issues.push(format!("rule {:?}: a reason in French and in English is required", r.code));
        }
    }
    // Two rules for the same group and overlapping ages contradict each
    // other (which date applies?) unless they are the same rule.
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            let same_group =
                a.profession == b.profession && a.requires_condition == b.requires_condition && a.dose == b.dose;
            let ((a_min, a_max), (b_min, b_max)) = (a.ages(), b.ages());
            if same_group && a_min <= b_max && b_min <= a_max {
                let (from, to) = (a_min.max(b_min), a_max.min(b_max));
                let ages = if to == u32::MAX { format!("{from} and over") } else { format!("{from} to {to}") };
                issues.push(format!("rules {:?} and {:?} overlap for the same people, aged {ages}", a.code, b.code));
            }
        }
    }
    issues
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
            ..Rule::default()
        };
        vec![
            rule("age_75", Some(75), None, false, "2021-01-18", 10),
            rule("high_risk", None, None, true, "2021-01-18", 20),
            rule("health_50", Some(50), Some("health_professional"), false, "2021-02-06", 30),
        ]
    }

    fn ev<'r>(p: &Profile, rules: &'r [Rule], as_of: NaiveDate) -> Decision<'r> {
        evaluate(p, rules, as_of, 1, None)
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
        let decision = ev(&person("1940-03-02", &[], None), &rules, d("2021-01-18"));
        assert!(matches!(decision, Decision::Eligible { since, .. } if since == d("2021-01-18")));
        assert!(matches!(ev(&person("1940-03-02", &[], None), &rules, d("2021-01-17")),
            Decision::Later { from, .. } if from == d("2021-01-18")));
    }

    #[test]
    fn younger_people_become_eligible_on_their_birthday() {
        let rules = rules();
        let decision = ev(&person("1951-06-10", &[], None), &rules, d("2026-01-01"));
        assert!(matches!(decision, Decision::Later { from, rule } if from == d("2026-06-10") && rule.code == "age_75"));
        // 29 February births come of age on 28 February in common years.
        let leap = ev(&person("1952-02-29", &[], None), &rules, d("2027-01-01"));
        assert!(matches!(leap, Decision::Later { from, .. } if from == d("2027-02-28")));
    }

    #[test]
    fn conditions_and_professions_open_other_ways() {
        let rules = rules();
        assert!(matches!(ev(&person("1990-01-01", &["dialysis"], None), &rules, d("2021-03-01")),
            Decision::Eligible { rule, .. } if rule.code == "high_risk"));
        assert!(matches!(ev(&person("1960-01-01", &[], Some("health_professional")), &rules, d("2021-03-01")),
            Decision::Eligible { rule, .. } if rule.code == "health_50"));
        assert!(matches!(ev(&person("1960-01-01", &[], Some("health_professional")), &rules, d("2021-02-01")),
            Decision::Later { from, .. } if from == d("2021-02-06")));
        assert_eq!(
            ev(&person("1990-01-01", &[], Some("health_professional")), &rules, d("2026-01-01")),
            Decision::Later { rule: &rules[2], from: d("2040-01-01") }
        );
        assert_eq!(
            ev(&person("1990-01-01", &[], Some("firefighter")), &[rules[1].clone(), rules[2].clone()], d("2026-01-01")),
            Decision::Never
        );
    }

    #[test]
    fn reasons_are_translated() {
        let rules = rules();
        let later = ev(&person("1951-06-10", &[], None), &rules, d("2026-01-01"));
        assert!(later.reason(Language::Fr).contains("10/06/2026"));
        assert!(later.reason(Language::En).contains("2026-06-10"));
        assert!(Decision::Never.reason(Language::En).starts_with("No rule"));
    }
}

#[cfg(test)]
mod validation {
    use super::*;
    use crate::domain::Catalogues;

    fn rule(code: &str, min: Option<u32>, max: Option<u32>) -> Rule {
        Rule {
            code: code.into(),
            min_age: min,
            max_age: max,
            reason_fr: "r".into(),
            reason_en: "r".into(),
            ..Rule::default()
        }
    }

    #[test]
    fn overlapping_and_contradictory_rules_are_named() {
        let c = Catalogues::default();
        assert!(validate(&[rule("75+", Some(75), None), rule("70-74", Some(70), Some(74))], &c).is_empty());
        assert_eq!(
            validate(&[rule("75+", Some(75), None), rule("70+", Some(70), None)], &c),
            ["rules \"75+\" and \"70+\" overlap for the same people, aged 75 and over"]
        );
        assert_eq!(validate(&[rule("x", Some(80), Some(70))], &c), ["rule \"x\": min_age 80 is above max_age 70"]);
        assert_eq!(validate(&[], &c), ["a rule set needs at least one rule"]);
        let booster = Rule { dose: 3, ..rule("b", Some(18), None) };
        assert_eq!(validate(&[booster], &c), ["rule \"b\": a booster rule needs min_days_since_last_dose"]);
        let nurse = Rule { profession: Some("astronaut".into()), ..rule("n", None, None) };
        assert_eq!(validate(&[nurse], &c), ["rule \"n\": unknown profession \"astronaut\""]);
    }

    #[test]
    fn age_bands_close_and_boosters_wait() {
        let p = Profile {
            birth_date: NaiveDate::from_ymd_opt(1950, 6, 1).unwrap(),
            conditions: Default::default(),
            profession: None,
        };
        let band = [rule("70-74", Some(70), Some(74))];
        let on = |y: i32| NaiveDate::from_ymd_opt(y, 2, 1).unwrap();
        assert!(matches!(evaluate(&p, &band, on(2021), 1, None), Decision::Eligible { .. }));
        // Turned 75 in June 2025: the 70-74 band no longer covers them.
        assert_eq!(evaluate(&p, &band, on(2026), 1, None), Decision::Never);
        let booster = [Rule { dose: 3, min_days_since_last_dose: Some(90), ..rule("b", Some(18), None) }];
        let last = NaiveDate::from_ymd_opt(2021, 10, 1).unwrap();
        assert!(matches!(
            evaluate(&p, &booster, NaiveDate::from_ymd_opt(2021, 11, 1).unwrap(), 3, Some(last)),
            Decision::Later { .. }
        ));
        assert!(
            matches!(evaluate(&p, &booster, on(2022), 3, Some(last)), Decision::Eligible { since, .. } if since == NaiveDate::from_ymd_opt(2021, 12, 30).unwrap())
        );
        assert_eq!(evaluate(&p, &booster, on(2022), 3, None), Decision::Never, "a booster needs the last dose's date");
        assert_eq!(
            evaluate(&p, &booster, on(2022), 1, Some(last)),
            Decision::Never,
            "booster rules do not open first doses"
        );
    }
}
