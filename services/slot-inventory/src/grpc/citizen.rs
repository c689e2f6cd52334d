//! Calls citizens (through the gateway) and phone agents make.

use chrono::{DateTime, Utc};
use creneau_kit::errors;
use creneau_kit::vocab::{Id, Vaccine, calendar};
use creneau_proto::slot_inventory::v1 as pb;
use sha2::{Digest, Sha256};
use tonic::Status;

use super::{SlotInventoryService, booking_to_pb, db_status, invalid, to_status};
use creneau_kit::vocab::{DoseKind, TimeOfDay};

use crate::domain::{BookingError, Citizen, Contact, Reference, Secret, SlotWindow, day_parts, parse_date};
use crate::storage::{self, BookCommand, DoseRequest, Target};

const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;
const MAX_CENTRES_PER_SUMMARY: usize = 500;

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Holds belong to the bearer of an attestation: the same attestation
/// must book the held place.
fn holder_key(attestation: &str) -> String {
    hex(Sha256::digest(attestation.trim().as_bytes()))
}

fn credentials(reference: &str, secret: &str) -> Result<(Reference, Secret), Status> {
    let reference = Reference::parse(reference).map_err(to_status)?;
    Ok((reference, Secret::from_presented(secret)))
}

impl SlotInventoryService {
    fn verify_attestation(
        &self,
        attestation: &str,
        now: DateTime<Utc>,
    ) -> Result<creneau_kit::attestation::Claims, BookingError> {
        if attestation.trim().is_empty() {
            return Err(BookingError::NotEligible);
        }
        Ok(self.verifier.verify(attestation.trim(), now)?)
    }

    fn book_command(&self, r: pb::BookRequest, now: DateTime<Utc>) -> Result<BookCommand, BookingError> {
        let key = r.idempotency_key.trim();
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN || key.chars().any(char::is_control) {
            return Err(BookingError::Invalid(format!(
                "idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable characters"
            )));
        }
        let c = r.citizen.as_ref().ok_or_else(|| BookingError::Invalid("citizen is required".into()))?;
        let contact = Contact::parse(c.email.as_deref(), c.phone.as_deref())?;
        let citizen =
            Citizen::parse(&c.first_name, &c.last_name, &c.birth_date, contact, &c.language, now.date_naive())?;
        let dose = match (r.dose, r.last_dose_date.as_deref()) {
            (0 | 1, _) => DoseRequest::First,
            (3, Some(last)) => {
                let last_dose = parse_date(last, "last_dose_date")?;
                if last_dose > now.date_naive() {
                    return Err(BookingError::Invalid("last_dose_date is in the future".into()));
                }
                DoseRequest::Booster { last_dose }
            }
            (3, None) => return Err(BookingError::Invalid("a booster needs last_dose_date".into())),
            (other, _) => return Err(BookingError::Invalid(format!("dose {other} cannot be booked: 1 or 3"))),
        };
        let claims = self.verify_attestation(&r.attestation, now)?;
        let attested_dose = if dose == DoseRequest::First { 1 } else { 3 };
        if claims.birth_date != citizen.birth_date || claims.dose != attested_dose {
            return Err(BookingError::AttestationMismatch);
        }
        let hold_id = Id::parse_optional(r.hold_id.as_deref(), "hold_id")?;
        let slot_id = Id::parse_optional(Some(&r.slot_id), "slot_id")?;
        let second_slot_id = Id::parse_optional(r.second_slot_id.as_deref(), "second_slot_id")?;
        let target = match (hold_id, slot_id) {
            (Some(hold_id), _) => {
                Target::Hold { hold_id: hold_id.into_string(), holder_key: holder_key(&r.attestation) }
            }
            (None, None) => return Err(BookingError::Invalid("slot_id or hold_id is required".into())),
            (None, Some(slot_id)) => Target::Slot(slot_id.into_string()),
        };
        let mut h = Sha256::new();
        for part in [
            r.slot_id.trim(),
            r.hold_id.as_deref().unwrap_or(""),
            r.second_slot_id.as_deref().unwrap_or(""),
            &attested_dose.to_string(),
            r.last_dose_date.as_deref().unwrap_or(""),
            citizen.identity().as_str(),
            citizen.contact.email.as_deref().unwrap_or(""),
            citizen.contact.phone.as_deref().unwrap_or(""),
            citizen.language.code(),
            r.attestation.trim(),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Ok(BookCommand {
            target,
            second_slot_id: second_slot_id.map(Id::into_string),
            dose,
            citizen,
            idempotency_key: key.to_owned(),
            request_hash: hex(h.finalize()),
            idempotency_ttl: self.lifetimes.idempotency_key,
        })
    }

    pub(super) async fn book_impl(&self, request: pb::BookRequest) -> Result<pb::Booking, Status> {
        let now = Utc::now();
        let command = self.book_command(request, now).map_err(to_status)?;
        let vaccines = self.vaccines().await?;
        let view = storage::book(&self.db, &command, &vaccines, now).await.map_err(to_status)?;
        if !view.replayed {
            self.relay_wakeup.notify_one();
            tracing::info!(reference = %view.reference, doses = view.appointments.len(), "booking confirmed");
        }
        Ok(booking_to_pb(view))
    }

    pub(super) async fn get_impl(&self, r: pb::GetAppointmentRequest) -> Result<pb::Booking, Status> {
        let (reference, secret) = credentials(&r.reference, &r.secret)?;
        let view = storage::get(&self.db, &reference, &secret).await.map_err(to_status)?;
        Ok(booking_to_pb(view))
    }

    pub(super) async fn cancel_impl(&self, r: pb::CancelRequest) -> Result<pb::Booking, Status> {
        let (reference, secret) = credentials(&r.reference, &r.secret)?;
        let view = storage::cancel(&self.db, &reference, &secret, Utc::now()).await.map_err(to_status)?;
        self.relay_wakeup.notify_one();
        tracing::info!(reference = %view.reference, "booking cancelled");
        Ok(booking_to_pb(view))
    }

    pub(super) async fn reschedule_impl(&self, r: pb::RescheduleRequest) -> Result<pb::Booking, Status> {
        let (reference, secret) = credentials(&r.reference, &r.secret)?;
        let dose = match r.dose {
            0 | 1 => 1,
            2 | 3 => r.dose as i32,
            other => return Err(errors::invalid_argument(format!("there is no dose {other}"))),
        };
        let slot_id = Id::parse(&r.slot_id, "slot_id").map_err(invalid)?;
        let second = Id::parse_optional(r.second_slot_id.as_deref(), "second_slot_id").map_err(invalid)?;
        let vaccines = self.vaccines().await?;
        let second = second.as_ref().map(Id::as_str);
        let view =
            storage::reschedule(&self.db, &vaccines, &reference, &secret, dose, slot_id.as_str(), second, Utc::now())
                .await
                .map_err(to_status)?;
        self.relay_wakeup.notify_one();
        tracing::info!(reference = %view.reference, dose, "booking moved");
        Ok(booking_to_pb(view))
    }

    pub(super) async fn hold_impl(&self, r: pb::HoldRequest) -> Result<pb::SlotHold, Status> {
        let now = Utc::now();
        self.verify_attestation(&r.attestation, now).map_err(to_status)?;
        let slot_id = Id::parse(&r.slot_id, "slot_id").map_err(invalid)?;
        let held = storage::hold(&self.db, slot_id.as_str(), &holder_key(&r.attestation), self.lifetimes.hold, now)
            .await
            .map_err(to_status)?;
        Ok(pb::SlotHold { hold_id: held.id, slot_id: held.slot_id, expires_at: held.expires_at.to_rfc3339() })
    }

    pub(super) async fn release_hold_impl(&self, r: pb::ReleaseHoldRequest) -> Result<pb::ReleaseHoldResponse, Status> {
        let hold_id = Id::parse(&r.hold_id, "hold_id").map_err(invalid)?;
        storage::release_hold(&self.db, hold_id.as_str(), &holder_key(&r.attestation)).await.map_err(to_status)?;
        Ok(pb::ReleaseHoldResponse {})
    }

    pub(super) async fn availability_impl(
        &self,
        r: pb::AvailabilitySummaryRequest,
    ) -> Result<pb::AvailabilitySummaryResponse, Status> {
        if r.centre_ids.len() > MAX_CENTRES_PER_SUMMARY {
            return Err(errors::invalid_argument(format!("at most {MAX_CENTRES_PER_SUMMARY} centres per call")));
        }
        let centre_ids = r
            .centre_ids
            .iter()
            .map(|id| Id::parse(id, "centre_ids").map(Id::into_string))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let from = match r.from.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Utc::now(),
            Some(raw) => calendar::instant(raw, "from").map_err(invalid)?,
        };
        let vaccine = r
            .vaccine
            .as_deref()
            .map(|v| v.parse::<Vaccine>().map_err(|e| errors::invalid_argument(e.to_string())))
            .transpose()?;
        let window = SlotWindow::from_instant(from, r.days).map_err(to_status)?;
        let dose = r.dose.as_deref().map(DoseKind::parse).transpose().map_err(errors::invalid_argument)?;
        let part = r.time_of_day.as_deref().map(TimeOfDay::parse).transpose().map_err(errors::invalid_argument)?;
        // Which vaccines count: the one asked for, and those given for the
        // dose asked for (vaccines are data: their rules say).
        let vaccines: Option<Vec<String>> = match (vaccine, dose) {
            (None, None | Some(DoseKind::First)) => None,
            (vaccine, dose) => {
                let catalogue = self.vaccines().await?;
                Some(
                    catalogue
                        .values()
                        .filter(|v| vaccine.is_none_or(|wanted| wanted.code() == v.code))
                        .filter(|v| match dose {
                            Some(DoseKind::Second) => v.needs_second_dose(),
                            Some(DoseKind::Booster) => v.booster_min_delay_days > 0,
                            _ => true,
                        })
                        .map(|v| v.code.clone())
                        .collect(),
                )
            }
        };
        let parts = part.map(|p| day_parts(window, p, chrono_tz::Europe::Paris));
        let rows = storage::availability(&self.db, &centre_ids, window, vaccines.as_deref(), parts.as_deref())
            .await
            .map_err(db_status)?;
        Ok(pb::AvailabilitySummaryResponse {
            centres: rows
                .into_iter()
                .map(|a| pb::CentreAvailability {
                    centre_id: a.centre_id,
                    next_slot: a.next_slot.map(|t| t.to_rfc3339()),
                    available_slots: a.available.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
                })
                .collect(),
        })
    }
}
