//! gRPC transport of the eligibility service.

use std::sync::Arc;

use chrono::Utc;
use creneau_kit::attestation::Signer;
use creneau_kit::errors;
use creneau_proto::eligibility::v1::{self as pb, eligibility_server::Eligibility};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::domain::{Decision, Language, Profile, evaluate};
use crate::storage;

pub struct EligibilityService {
    db: DatabaseConnection,
    signer: Arc<Signer>,
    attestation_ttl: chrono::Duration,
}

impl EligibilityService {
    pub fn new(db: DatabaseConnection, signer: Arc<Signer>, attestation_ttl: chrono::Duration) -> Self {
        Self { db, signer, attestation_ttl }
    }
}

#[tonic::async_trait]
impl Eligibility for EligibilityService {
    // Never record the birth date or conditions: they are personal data.
    #[tracing::instrument(skip_all)]
    async fn check(&self, request: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        let r = request.into_inner();
        let now = Utc::now();
        let today = now.date_naive();
        let as_of = match r.as_of.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => today,
            Some(raw) => {
                crate::domain::profile_date(raw, "as_of").map_err(|e| errors::invalid_argument(e.to_string()))?
            }
        };
        let dose = match r.dose.unwrap_or(1) {
            d @ (1 | 3) => d,
            other => return Err(errors::invalid_argument(format!("dose must be 1 or 3, not {other}"))),
        };
        let catalogues = storage::load_catalogues(&self.db).await.map_err(|e| errors::internal(&e))?;
        let profile = Profile::parse(&r.birth_date, &r.conditions, r.profession.as_deref(), &catalogues, today)
            .map_err(|e| errors::invalid_argument(e.to_string()))?;
        let rules = storage::load_rules(&self.db).await.map_err(|e| errors::internal(&e))?;
        let language = Language::parse(&r.language);
        let decision = evaluate(&profile, &rules, as_of);
        let reason = decision.reason(language);
        let response = match decision {
            Decision::Eligible { since, .. } => {
                // An attestation is proof for booking now, so only for today.
                let attestation =
                    (as_of == today).then(|| self.signer.sign(profile.birth_date, dose, now, self.attestation_ttl));
                pb::CheckResponse {
                    eligible: true,
                    reason,
                    eligible_from: Some(since.to_string()),
                    attestation_expires_at: attestation.as_ref().map(|_| (now + self.attestation_ttl).to_rfc3339()),
                    attestation,
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
        };
        tracing::info!(eligible = response.eligible, "eligibility checked");
        Ok(Response::new(response))
    }

    async fn list_verification_keys(
        &self,
        _request: Request<pb::ListVerificationKeysRequest>,
    ) -> Result<Response<pb::ListVerificationKeysResponse>, Status> {
        Ok(Response::new(pb::ListVerificationKeysResponse {
            keys: vec![pb::VerificationKey {
                key_id: self.signer.key_id().to_owned(),
                public_key: self.signer.public_key().to_vec(),
            }],
        }))
    }
}
