use chrono::Utc;
use creneau_kit::attestation::Verifier;
use creneau_proto::eligibility::v1::ListVerificationKeysRequest;
use tonic::Code;

use crate::helpers::TestApp;

async fn people_aged_75_get_an_attestation_slot_inventory_can_verify(app: TestApp) {
    let r = app.check("1940-03-02", &[], None, None, "fr").await.unwrap();
    assert!(r.eligible);
    assert_eq!(r.reason, "Vous avez 75 ans ou plus.");
    assert_eq!(r.eligible_from.as_deref(), Some("2021-01-18"));
    let attestation = r.attestation.expect("an attestation when eligible");

    let keys = app.client.clone().list_verification_keys(ListVerificationKeysRequest {}).await.unwrap().into_inner();
    let spec = keys
        .keys
        .iter()
        .map(|k| {
            use base64::Engine;
            format!("{}:{}", k.key_id, base64::engine::general_purpose::STANDARD.encode(&k.public_key))
        })
        .collect::<Vec<_>>()
        .join(",");
    let claims = Verifier::parse(&spec).unwrap().verify(&attestation, Utc::now()).unwrap();
    assert_eq!(claims.birth_date.to_string(), "1940-03-02");
    assert_eq!(claims.dose, 1);
    assert!(claims.expires_at > Utc::now() + chrono::Duration::minutes(9));
}

async fn younger_people_learn_when_they_become_eligible(app: TestApp) {
    let r = app.check("1960-06-10", &[], None, Some("2026-01-01"), "en").await.unwrap();
    assert!(!r.eligible);
    assert!(r.attestation.is_none());
    assert_eq!(r.eligible_from.as_deref(), Some("2035-06-10"));
    assert!(r.reason.starts_with("You will be eligible from 2035-06-10"), "{}", r.reason);
}

async fn conditions_and_professions_make_people_eligible(app: TestApp) {
    let r = app.check("1990-01-01", &["organ_transplant"], None, None, "fr").await.unwrap();
    assert!(r.eligible);
    assert!(r.attestation.is_some());
    let r = app.check("1970-01-01", &[], Some("health_professional"), None, "en").await.unwrap();
    assert!(r.eligible);
    assert_eq!(r.reason, "You are a health professional aged 50 or older.");
    let r = app.check("1990-01-01", &[], Some("firefighter"), None, "fr").await.unwrap();
    assert!(!r.eligible);
    assert_eq!(r.eligible_from.as_deref(), Some("2065-01-01"));
}

async fn a_check_about_another_day_gives_no_attestation(app: TestApp) {
    let r = app.check("1940-03-02", &[], None, Some("2025-01-01"), "fr").await.unwrap();
    assert!(r.eligible);
    assert!(r.attestation.is_none(), "attestations are proof for booking today only");
}

async fn bad_input_is_an_invalid_argument(app: TestApp) {
    for (birth, conditions, profession, as_of) in [
        ("02/03/1940", vec![], None, None),
        ("2099-01-01", vec![], None, None),
        ("1940-03-02", vec!["headache"], None, None),
        ("1940-03-02", vec![], Some("astronaut"), None),
        ("1940-03-02", vec![], None, Some("yesterday")),
    ] {
        let err = app.check(birth, &conditions, profession, as_of, "fr").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{birth} {conditions:?} {profession:?} {as_of:?}");
        assert_eq!(creneau_kit::errors::reason_of(&err).as_deref(), Some("VALIDATION"));
    }
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    people_aged_75_get_an_attestation_slot_inventory_can_verify,
    younger_people_learn_when_they_become_eligible,
    conditions_and_professions_make_people_eligible,
    a_check_about_another_day_gives_no_attestation,
    bad_input_is_an_invalid_argument,
);
