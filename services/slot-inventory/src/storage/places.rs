//! Places in slots: the primitives every booking path composes inside its
//! transaction. A slot's row is locked before its places are counted, so
//! the count of live holds read next cannot change under us: holds and
//! bookings of a slot are serialised on that row.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::RwLock;

use super::entities::{hold, slot, vaccine};
use crate::domain::{HoldState, Places, VaccineRules, Window};

pub const OPEN: &str = "open";
pub const CLOSED: &str = "closed";

/// The slot, its row locked until the transaction ends (PostgreSQL; SQLite
/// transactions already run one at a time).
pub async fn lock_slot(txn: &impl ConnectionTrait, id: &str) -> Result<Option<slot::Model>, DbErr> {
    slot::Entity::find_by_id(id.to_owned()).lock_exclusive().one(txn).await
}

/// Takes one place of `slot`, whose row the caller has locked, if it is
/// open and the capacity rule leaves room. The live holds are counted
/// after the lock was granted, so none can appear or go unseen meanwhile.
pub async fn take_place(txn: &impl ConnectionTrait, slot: &slot::Model, now: DateTime<Utc>) -> Result<bool, DbErr> {
    if slot.status != OPEN {
        return Ok(false);
    }
    let held = live_holds(txn, std::slice::from_ref(&slot.id), now).await?.get(&slot.id).copied().unwrap_or(0);
    if !Places::new(slot.capacity, slot.booked, held).has_room() {
        return Ok(false);
    }
    // The row is locked: `booked` is what was read. The condition only
    // restates the CHECK constraint, so that a caller that broke the
    // locking protocol gets a refusal rather than an error.
    let taken = slot::Entity::update_many()
        .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).add(1))
        .filter(slot::Column::Id.eq(slot.id.clone()))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .exec(txn)
        .await?;
    Ok(taken.rows_affected == 1)
}

pub async fn free_place(txn: &impl ConnectionTrait, slot_id: &str) -> Result<(), DbErr> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).sub(1))
        .filter(slot::Column::Id.eq(slot_id))
        .filter(slot::Column::Booked.gt(0))
        .exec(txn)
        .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct HeldCount {
    slot_id: String,
    held: i64,
}

/// Live holds per slot.
pub async fn live_holds(
    db: &impl ConnectionTrait,
    slot_ids: &[String],
    now: DateTime<Utc>,
) -> Result<HashMap<String, i64>, DbErr> {
    if slot_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = hold::Entity::find()
        .select_only()
        .column(hold::Column::SlotId)
        .column_as(hold::Column::Id.count(), "held")
        .filter(hold::Column::SlotId.is_in(slot_ids.iter().cloned()))
        .filter(hold::Column::State.eq(HoldState::Live.as_str()))
        .filter(hold::Column::ExpiresAt.gt(now))
        .group_by(hold::Column::SlotId)
        .into_model::<HeldCount>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.slot_id, r.held)).collect())
}

/// Vaccine rules by code.
pub type Vaccines = HashMap<String, VaccineRules>;

const CATALOGUE_TTL: Duration = Duration::from_secs(30);

/// Vaccines change rarely: their rules are kept in memory and reloaded
/// every 30 s, so the booking path does not read them each time.
#[derive(Clone, Default)]
pub struct VaccineCatalogue {
    loaded: Arc<RwLock<Option<Loaded>>>,
}

type Loaded = (Instant, Arc<Vaccines>);

impl VaccineCatalogue {
    pub async fn current(&self, db: &impl ConnectionTrait) -> Result<Arc<Vaccines>, DbErr> {
        if let Some((at, vaccines)) = self.loaded.read().await.as_ref()
            && at.elapsed() < CATALOGUE_TTL
        {
            return Ok(vaccines.clone());
        }
        let fresh: Vaccines = all_vaccines(db).await?.into_iter().map(|v| (v.code.clone(), v)).collect();
        let fresh = Arc::new(fresh);
        *self.loaded.write().await = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }
}

pub async fn all_vaccines(db: &impl ConnectionTrait) -> Result<Vec<VaccineRules>, DbErr> {
    let rows = vaccine::Entity::find().order_by_asc(vaccine::Column::Code).all(db).await?;
    Ok(rows.into_iter().map(rules_of).collect())
}

fn rules_of(v: vaccine::Model) -> VaccineRules {
    let days = |n: i32| u32::try_from(n).unwrap_or(0);
    VaccineRules {
        code: v.code,
        label: v.label,
        doses: days(v.doses),
        min_interval_days: days(v.min_interval_days),
        max_interval_days: days(v.max_interval_days),
        booster_min_delay_days: days(v.booster_min_delay_days),
    }
}

/// Open slots of the same centre and vaccine inside `window` that look
/// free (holds not counted), earliest first; `take_place` has the last
/// word.
pub async fn candidates(
    txn: &impl ConnectionTrait,
    centre_id: &str,
    vaccine: &str,
    window: Window,
    limit: u64,
) -> Result<Vec<slot::Model>, DbErr> {
    slot::Entity::find()
        .filter(slot::Column::CentreId.eq(centre_id))
        .filter(slot::Column::Vaccine.eq(vaccine))
        .filter(slot::Column::Status.eq(OPEN))
        .filter(slot::Column::StartsAt.gte(window.from))
        .filter(slot::Column::StartsAt.lt(window.until))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .order_by_asc(slot::Column::StartsAt)
        .order_by_asc(slot::Column::Id)
        .limit(limit)
        .all(txn)
        .await
}

/// Takes a place for a second dose: in `chosen` if given, else in the
/// earliest candidate that still has room.
pub async fn place_second_dose(
    txn: &impl ConnectionTrait,
    first: &slot::Model,
    rules: &VaccineRules,
    chosen: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Result<slot::Model, crate::domain::BookingError>, DbErr> {
    use crate::domain::BookingError;
    let window = rules.second_dose_window(first.starts_at);
    if let Some(id) = chosen {
        let Some(second) = lock_slot(txn, id).await? else {
            return Ok(Err(BookingError::Invalid(format!("second_slot_id {id} does not exist"))));
        };
        if second.centre_id != first.centre_id || second.vaccine != first.vaccine {
            return Ok(Err(BookingError::Invalid(
                "the second dose is given at the same centre with the same vaccine".into(),
            )));
        }
        if !rules.second_dose_fits(first.starts_at, second.starts_at) {
            return Ok(Err(BookingError::Invalid(format!(
                "the second dose of {} is {} to {} days after the first",
                rules.label, rules.min_interval_days, rules.max_interval_days
            ))));
        }
        return Ok(if take_place(txn, &second, now).await? { Ok(second) } else { Err(BookingError::SecondSlotFull) });
    }
    for candidate in candidates(txn, &first.centre_id, &first.vaccine, window, 50).await? {
        if let Some(locked) = lock_slot(txn, &candidate.id).await?
            && take_place(txn, &locked, now).await?
        {
            return Ok(Ok(locked));
        }
    }
    Ok(Err(BookingError::NoSecondDoseSlot(
        window.from.date_naive(),
        (window.until - chrono::Duration::days(1)).date_naive(),
    )))
}
