//! Calls centre staff make: publishing slots and schedules, closing slots,
//! cancelling or moving a session.

use chrono::Utc;
use creneau_kit::errors;
use creneau_proto::slot_inventory::v1 as pb;
use tonic::Status;

use super::{SlotInventoryService, db_status, invalid, slot_to_pb, to_status};
use crate::domain::{NewSlot, Schedule, parse_date, parse_time, parse_zone, session_bounds};
use crate::storage::{self, SessionAction, SlotView};
use creneau_kit::vocab::Id;

const MAX_SLOTS_PER_CREATE: usize = 5000;

impl SlotInventoryService {
    pub(super) async fn create_slots_impl(&self, r: pb::CreateSlotsRequest) -> Result<pb::CreateSlotsResponse, Status> {
        let centre_id = Id::parse(&r.centre_id, "centre_id").map_err(invalid)?;
        if r.slots.len() > MAX_SLOTS_PER_CREATE {
            return Err(errors::invalid_argument(format!("at most {MAX_SLOTS_PER_CREATE} slots per call")));
        }
        let slots = r
            .slots
            .iter()
            .map(|s| NewSlot::parse(&s.vaccine, &s.starts_at, &s.ends_at, s.capacity))
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_status)?;
        let stored =
            storage::create_slots(&self.db, centre_id.as_str(), &slots, Utc::now()).await.map_err(db_status)?;
        Ok(pb::CreateSlotsResponse {
            slots: stored.into_iter().map(|slot| slot_to_pb(SlotView { slot, held: 0 })).collect(),
        })
    }

    pub(super) async fn create_schedule_impl(
        &self,
        r: pb::CreateScheduleRequest,
    ) -> Result<pb::CreateScheduleResponse, Status> {
        let schedule = Schedule::parse(
            &r.centre_id,
            &r.vaccine,
            &r.start_date,
            &r.end_date,
            &r.weekdays,
            &r.opens,
            &r.closes,
            r.slot_minutes,
            r.lines,
            &r.time_zone,
        )
        .map_err(to_status)?;
        let (created, total) = storage::create_schedule(&self.db, &schedule, Utc::now()).await.map_err(db_status)?;
        tracing::info!(schedule_id = %schedule.id(), created, total, "schedule applied");
        Ok(pb::CreateScheduleResponse {
            schedule_id: schedule.id(),
            slots_created: created as u32,
            slots_total: total as u32,
        })
    }

    pub(super) async fn cancel_session_impl(
        &self,
        r: pb::CancelSessionRequest,
    ) -> Result<pb::CancelSessionResponse, Status> {
        let centre = Id::parse(&r.centre_id, "centre_id").map_err(invalid)?;
        if r.reason.trim().is_empty() || r.reason.chars().count() > 300 || r.reason.chars().any(char::is_control) {
            return Err(errors::invalid_argument("reason must be 1 to 300 characters: citizens read it"));
        }
        let zone = parse_zone(&r.time_zone).map_err(to_status)?;
        let date = parse_date(&r.date, "date").map_err(to_status)?;
        let from = r.from_time.as_deref().map(|t| parse_time(t, "from_time")).transpose().map_err(to_status)?;
        let to = r.to_time.as_deref().map(|t| parse_time(t, "to_time")).transpose().map_err(to_status)?;
        let bounds = session_bounds(date, from, to, zone).map_err(to_status)?;
        let action = match r.move_to_date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            None => SessionAction::Cancel,
            Some(d) => {
                let target = parse_date(d, "move_to_date").map_err(to_status)?;
                if target == date {
                    return Err(errors::invalid_argument("move_to_date must be another day"));
                }
                SessionAction::MoveTo(target)
            }
        };
        let vaccines = self.vaccines().await?;
        let (centre, reason) = (centre.as_str(), r.reason.trim());
        let outcome = storage::cancel_session(&self.db, &vaccines, centre, bounds, zone, &action, reason, Utc::now())
            .await
            .map_err(to_status)?;
        self.relay_wakeup.notify_one();
        tracing::info!(centre_id = %r.centre_id, cancelled = outcome.cancelled, moved = outcome.moved, "session cancelled");
        Ok(pb::CancelSessionResponse {
            cancelled: outcome.cancelled,
            moved: outcome.moved,
            slots_closed: outcome.slots_closed,
        })
    }
}
