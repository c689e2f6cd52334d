//! Rules as versioned data: drafted, validated, dry-run, published with an
//! effective time, audited; every replica follows without a restart.

use std::time::Duration;

use chrono::{Months, Utc};
use creneau_kit::testing::Backend;
use creneau_proto::eligibility::v1::{
    self as pb, CheckRequest, CreateRuleSetRequest, DryRunRequest, ListRuleSetsRequest, PublishRuleSetRequest,
    RuleSetRef, eligibility_client::EligibilityClient,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{TestApp, spawn_replicas};

fn rule(code: &str, min: Option<u32>, max: Option<u32>, reason: &str) -> pb::Rule {
    pb::Rule {
        code: code.into(),
        min_age: min,
        max_age: max,
        dose: 1,
        effective_from: "2021-01-18".into(),
        priority: 10,
        reason_fr: format!("{reason} (fr)"),
        reason_en: reason.into(),
        ..Default::default()
    }
}

/// The next phase: 75 and over as before, and now 70 to 74.
fn next_phase() -> Vec<pb::Rule> {
    vec![rule("age_75", Some(75), None, "75 and over"), rule("age_70_74", Some(70), Some(74), "70 to 74")]
}

/// Someone who turned 72 a month ago.
fn seventy_two() -> String {
    (Utc::now().date_naive() - Months::new(72 * 12 + 1)).to_string()
}

async fn eligible(client: &EligibilityClient<Channel>, birth: &str) -> bool {
    client
        .clone()
        .check(CheckRequest { birth_date: birth.into(), language: "en".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .eligible
}

async fn draft(client: &EligibilityClient<Channel>, rules: Vec<pb::Rule>) -> pb::RuleSet {
    client
        .clone()
        .create_rule_set(CreateRuleSetRequest { name: "Phase 2".into(), rules, actor: "dgs-agent-7".into() })
        .await
        .unwrap()
        .into_inner()
}

async fn overlapping_rules_cannot_be_published(app: TestApp) {
    let mut client = app.client.clone();
    let set = draft(&client, vec![rule("age_75", Some(75), None, "75+"), rule("age_70", Some(70), None, "70+")]).await;
    assert_eq!(set.status, "draft");
    assert_eq!(set.issues, ["rules \"age_70\" and \"age_75\" overlap for the same people, aged 75 and over"]);
    let err = client
        .publish_rule_set(PublishRuleSetRequest { id: set.id.clone(), effective_at: None, actor: "dgs-agent-7".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("overlap"), "{}", err.message());
    let validated = client.validate_rule_set(RuleSetRef { id: set.id }).await.unwrap().into_inner();
    assert_eq!(validated.issues.len(), 1);
    let nameless = client
        .create_rule_set(CreateRuleSetRequest { name: "x".into(), rules: next_phase(), actor: " ".into() })
        .await
        .unwrap_err();
    assert_eq!(nameless.code(), Code::InvalidArgument, "every change names who made it");
}

async fn a_draft_can_be_tried_before_it_is_published(app: TestApp) {
    let set = draft(&app.client, next_phase()).await;
    assert!(set.issues.is_empty());
    let profiles = [seventy_two(), "1990-01-01".to_string()]
        .map(|b| CheckRequest { birth_date: b, language: "en".into(), ..Default::default() })
        .to_vec();
    let results =
        app.client.clone().dry_run(DryRunRequest { rule_set_id: set.id, profiles }).await.unwrap().into_inner().results;
    assert_eq!(results.iter().map(|r| r.eligible).collect::<Vec<_>>(), [true, false]);
    assert_eq!(results[0].reason, "70 to 74");
    assert!(results[0].attestation.is_none(), "a dry run proves nothing");
    assert!(!eligible(&app.client, &seventy_two()).await, "nothing changed before publication");
}

/// Publishing a phase on one replica changes the other's answers, without
/// a restart; history and audit keep both sets.
async fn publishing_reaches_every_replica(backend: Backend) {
    let Some(r) = spawn_replicas(backend).await else { return };
    let birth = seventy_two();
    assert!(!eligible(&r.a, &birth).await);
    assert!(!eligible(&r.b, &birth).await);
    let set = draft(&r.a, next_phase()).await;
    // Effective in a second: not yet, then everywhere.
    let at = Utc::now() + chrono::Duration::seconds(1);
    r.a.clone()
        .publish_rule_set(PublishRuleSetRequest {
            id: set.id.clone(),
            effective_at: Some(at.to_rfc3339()),
            actor: "dgs-agent-7".into(),
        })
        .await
        .unwrap();
    assert!(!eligible(&r.a, &birth).await, "not before its effective time");
    let published = std::time::Instant::now();
    loop {
        if eligible(&r.b, &birth).await && eligible(&r.a, &birth).await {
            break;
        }
        assert!(published.elapsed() < Duration::from_secs(5), "replica b never saw the new phase");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("the new phase answered on both replicas {:?} after publication", published.elapsed());

    let history = r.b.clone().list_rule_sets(ListRuleSetsRequest {}).await.unwrap().into_inner();
    assert_eq!(history.rule_sets.len(), 2, "the previous set stays in the history");
    assert!(history.rule_sets.iter().all(|s| s.status == "published"));
    let trail: Vec<(&str, &str)> = history
        .audit
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .filter(|(_, who)| *who != "migration")
        .collect();
    assert_eq!(trail, [("create", "dgs-agent-7"), ("publish", "dgs-agent-7")]);
    let again =
        r.a.clone()
            .publish_rule_set(PublishRuleSetRequest { id: set.id, effective_at: None, actor: "dgs-agent-7".into() })
            .await
            .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    overlapping_rules_cannot_be_published,
    a_draft_can_be_tried_before_it_is_published,
);

#[tokio::test(flavor = "multi_thread")]
async fn publishing_reaches_every_replica_postgres() {
    publishing_reaches_every_replica(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_reaches_every_replica_sqlite() {
    publishing_reaches_every_replica(Backend::Sqlite).await;
}
