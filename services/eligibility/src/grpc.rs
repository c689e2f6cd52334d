//! gRPC transport of the eligibility service.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use creneau_kit::attestation::Signer;
use creneau_kit::errors::{self, reason};
use creneau_proto::eligibility::v1::{self as pb, eligibility_server::Eligibility};
use sea_orm::DatabaseConnection;
use tonic::{Code, Request, Response, Status};

use crate::domain::{Catalogues, Decision, Language, Profile, Rule, evaluate, profile_date, validate};
use crate::rule_book::RuleBook;
use crate::storage;

pub struct EligibilityService {
    db: DatabaseConnection,
    signer: Arc<Signer>,
    /// Public keys of retired signing keys, still verifying what they signed.
    retired: Vec<pb::VerificationKey>,
    attestation_ttl: chrono::Duration,
    rules: RuleBook,
}

impl EligibilityService {
    pub fn new(
        db: DatabaseConnection,
        signer: Arc<Signer>,
        retired: Vec<pb::VerificationKey>,
        attestation_ttl: chrono::Duration,
        rules: RuleBook,
    ) -> Self {
        Self { db, signer, retired, attestation_ttl, rules }
    }
}

fn invalid(e: impl std::fmt::Display) -> Status {
    errors::invalid_argument(e.to_string())
}

fn db_error(e: sea_orm::DbErr) -> Status {
    creneau_kit::db::status(&e)
}

fn date(raw: Option<&str>, field: &'static str) -> Result<Option<NaiveDate>, Status> {
    raw.map(str::trim).filter(|s| !s.is_empty()).map(|s| profile_date(s, field).map_err(invalid)).transpose()
}

/// One check against `rules`; signs an attestation when `signer` is given
/// and the person is eligible today.
fn decide(
    r: &pb::CheckRequest,
    rules: &[Rule],
    catalogues: &Catalogues,
    now: DateTime<Utc>,
    signer: Option<(&Signer, chrono::Duration)>,
) -> Result<pb::CheckResponse, Status> {
    let today = now.date_naive();
    let as_of = date(r.as_of.as_deref(), "as_of")?.unwrap_or(today);
    let last_dose = date(r.last_dose_date.as_deref(), "last_dose_date")?;
    let dose = match r.dose.unwrap_or(1) {
        d @ (1 | 3) => d,
        other => return Err(invalid(format!("dose must be 1 or 3, not {other}"))),
    };
    let profile =
        Profile::parse(&r.birth_date, &r.conditions, r.profession.as_deref(), catalogues, today).map_err(invalid)?;
    let language = Language::parse(&r.language);
    let decision = evaluate(&profile, rules, as_of, dose, last_dose);
    let reason = decision.reason(language);
    Ok(match decision {
        Decision::Eligible { since, .. } => {
            // An attestation is proof for booking now, so only for today.
            let attestation = signer
                .filter(|_| as_of == today)
                .map(|(signer, ttl)| (signer.sign(profile.birth_date, dose, now, ttl), now + ttl));
            pb::CheckResponse {
                eligible: true,
                reason,
                eligible_from: Some(since.to_string()),
                attestation_expires_at: attestation.as_ref().map(|(_, exp)| exp.to_rfc3339()),
                attestation: attestation.map(|(token, _)| token),
            }
        }
        Decision::Later { from, .. } => pb::CheckResponse {
            eligible: false,
            reason,
            eligible_from: Some(from.to_string()),
            attestation: None,
            attestation_expires_at: None,
        },
        Decision::Never => pb::CheckResponse {
            eligible: false,
            reason,
            eligible_from: None,
            attestation: None,
            attestation_expires_at: None,
        },
    })
}

fn rule_from_pb(r: &pb::Rule) -> Result<Rule, Status> {
    Ok(Rule {
        code: r.code.trim().to_owned(),
        min_age: r.min_age,
        max_age: r.max_age,
        profession: r.profession.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned),
        requires_condition: r.requires_condition,
        dose: if r.dose == 0 { 1 } else { r.dose },
        min_days_since_last_dose: r.min_days_since_last_dose,
        effective_from: profile_date(&r.effective_from, "effective_from").map_err(invalid)?,
        priority: r.priority,
        reason_fr: r.reason_fr.trim().to_owned(),
        reason_en: r.reason_en.trim().to_owned(),
    })
}

fn rule_to_pb(r: &Rule) -> pb::Rule {
    pb::Rule {
        code: r.code.clone(),
        min_age: r.min_age,
        max_age: r.max_age,
        profession: r.profession.clone(),
        requires_condition: r.requires_condition,
        dose: r.dose,
        min_days_since_last_dose: r.min_days_since_last_dose,
        effective_from: r.effective_from.to_string(),
        priority: r.priority,
        reason_fr: r.reason_fr.clone(),
        reason_en: r.reason_en.clone(),
    }
}

fn actor(raw: &str) -> Result<String, Status> {
    let actor = raw.trim();
    if actor.is_empty() || actor.len() > 100 {
        return Err(invalid("actor (who makes the change) is required, at most 100 characters"));
    }
    Ok(actor.to_owned())
}

impl EligibilityService {
    async fn view(&self, set: storage::entities::rule_set::Model) -> Result<pb::RuleSet, Status> {
        let rules = storage::rules_of(&self.db, &set.id).await.map_err(db_error)?;
        let catalogues = storage::load_catalogues(&self.db).await.map_err(db_error)?;
        Ok(pb::RuleSet {
            issues: validate(&rules, &catalogues),
            rules: rules.iter().map(rule_to_pb).collect(),
            id: set.id,
            name: set.name,
            status: set.status,
            effective_at: set.effective_at.map(|t| t.to_rfc3339()),
            created_by: set.created_by,
            published_by: set.published_by,
        })
    }

    async fn set(&self, id: &str) -> Result<storage::entities::rule_set::Model, Status> {
        let id = creneau_kit::vocab::Id::parse(id, "id").map_err(invalid)?;
        let id = id.as_str();
        storage::find(&self.db, id)
            .await
            .map_err(db_error)?
            .ok_or_else(|| errors::not_found(format!("no rule set {id:?}")))
    }
}

#[tonic::async_trait]
impl Eligibility for EligibilityService {
    // Never record the birth date or conditions: they are personal data.
    #[tracing::instrument(skip_all)]
    async fn check(&self, request: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        let r = request.into_inner();
        let now = Utc::now();
        let (rules, catalogues) = self.rules.in_force(&self.db, now).await.map_err(db_error)?;
        let response = decide(&r, &rules, &catalogues, now, Some((&self.signer, self.attestation_ttl)))?;
        tracing::info!(eligible = response.eligible, "eligibility checked");
        Ok(Response::new(response))
    }

    async fn list_verification_keys(
        &self,
        _request: Request<pb::ListVerificationKeysRequest>,
    ) -> Result<Response<pb::ListVerificationKeysResponse>, Status> {
        let mut keys = vec![pb::VerificationKey {
            key_id: self.signer.key_id().to_owned(),
            public_key: self.signer.public_key().to_vec(),
        }];
        keys.extend(self.retired.iter().cloned());
        Ok(Response::new(pb::ListVerificationKeysResponse { keys }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_rule_set(
        &self,
        request: Request<pb::CreateRuleSetRequest>,
    ) -> Result<Response<pb::RuleSet>, Status> {
        let r = request.into_inner();
        let actor = actor(&r.actor)?;
        let name = r.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid("name must be 1 to 200 characters"));
        }
        let rules = r.rules.iter().map(rule_from_pb).collect::<Result<Vec<_>, _>>()?;
        let id = storage::create(&self.db, name, &rules, &actor, Utc::now()).await.map_err(db_error)?;
        tracing::info!(rule_set = %id, "rule set drafted");
        Ok(Response::new(self.view(self.set(&id).await?).await?))
    }

    async fn validate_rule_set(&self, request: Request<pb::RuleSetRef>) -> Result<Response<pb::RuleSet>, Status> {
        Ok(Response::new(self.view(self.set(&request.into_inner().id).await?).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn publish_rule_set(
        &self,
        request: Request<pb::PublishRuleSetRequest>,
    ) -> Result<Response<pb::RuleSet>, Status> {
        let r = request.into_inner();
        let actor = actor(&r.actor)?;
        let now = Utc::now();
        let effective_at = match r.effective_at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => now,
            Some(raw) => creneau_kit::vocab::calendar::instant(raw, "effective_at").map_err(invalid)?,
        };
        let view = self.view(self.set(&r.id).await?).await?;
        if !view.issues.is_empty() {
            return Err(errors::status(
                Code::FailedPrecondition,
                reason::VALIDATION,
                format!("this rule set cannot be published: {}", view.issues.join("; ")),
            ));
        }
        if !storage::publish(&self.db, &r.id, effective_at, &actor, now).await.map_err(db_error)? {
            return Err(errors::status(Code::FailedPrecondition, reason::VALIDATION, "only a draft can be published"));
        }
        // This replica at once; the others at their next poll.
        self.rules.refresh(&self.db).await.map_err(db_error)?;
        tracing::info!(rule_set = %r.id, effective_at = %effective_at, "rule set published");
        Ok(Response::new(self.view(self.set(&r.id).await?).await?))
    }

    async fn list_rule_sets(
        &self,
        _request: Request<pb::ListRuleSetsRequest>,
    ) -> Result<Response<pb::ListRuleSetsResponse>, Status> {
        let mut rule_sets = Vec::new();
        for set in storage::all_sets(&self.db).await.map_err(db_error)? {
            rule_sets.push(self.view(set).await?);
        }
        let audit = storage::audit_trail(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|a| pb::AuditEntry {
                at: a.at.to_rfc3339(),
                actor: a.actor,
                action: a.action,
                rule_set_id: a.rule_set_id,
                detail: a.detail,
            })
            .collect();
        Ok(Response::new(pb::ListRuleSetsResponse { rule_sets, audit }))
    }

    async fn dry_run(&self, request: Request<pb::DryRunRequest>) -> Result<Response<pb::DryRunResponse>, Status> {
        let r = request.into_inner();
        if r.profiles.len() > 1000 {
            return Err(invalid("at most 1000 profiles per dry run"));
        }
        self.set(&r.rule_set_id).await?;
        let rules = storage::rules_of(&self.db, &r.rule_set_id).await.map_err(db_error)?;
        let catalogues = storage::load_catalogues(&self.db).await.map_err(db_error)?;
        let now = Utc::now();
        let results =
            r.profiles.iter().map(|p| decide(p, &rules, &catalogues, now, None)).collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::DryRunResponse { results }))
    }
}
