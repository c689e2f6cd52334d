//! The booking invariants, checked against slot-inventory's own tables.
//! The concurrency suite runs them after every scenario and the rush
//! benchmark after every run; an operator can run them on a live database
//! (they only read). Each check counts its violations: zero everywhere is
//! the only acceptable answer.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use creneau_kit::db::statement;
use sea_orm::{ConnectionTrait, DbErr};
use serde::Serialize;

use crate::storage::all_vaccines;

/// One invariant and how many rows break it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub rule: &'static str,
    pub violations: u64,
}

impl Check {
    pub fn holds(&self) -> bool {
        self.violations == 0
    }
}

/// Every invariant, as of `now` (holds that expired before `now` no longer
/// take a place).
pub async fn check(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Vec<Check>, DbErr> {
    let mut checks = vec![Check {
        name: "capacity",
        rule: "booked places plus live holds never exceed a slot's capacity",
        violations: over_capacity(db, now).await?,
    }];
    let counted = [
        (
            "slot-counts",
            "a slot's booked count equals its confirmed appointments",
            "SELECT COUNT(*) FROM slots s WHERE s.booked <> (SELECT COUNT(*) FROM appointments a \
             JOIN bookings b ON b.id = a.booking_id WHERE a.slot_id = s.id AND b.status = 'confirmed')",
        ),
        (
            "appointments",
            "a slot never has more confirmed appointments than places",
            "SELECT COUNT(*) FROM slots s WHERE s.capacity < (SELECT COUNT(*) FROM appointments a \
             JOIN bookings b ON b.id = a.booking_id WHERE a.slot_id = s.id AND b.status = 'confirmed')",
        ),
        (
            "one-first-dose",
            "nobody holds two active first doses",
            "SELECT COUNT(*) FROM (SELECT b.identity_key FROM bookings b JOIN appointments a ON a.booking_id = b.id \
             WHERE b.status = 'confirmed' AND a.dose = 1 GROUP BY b.identity_key HAVING COUNT(*) > 1) twice",
        ),
        (
            "confirmed-events",
            "exactly one booking.confirmed event per booking",
            "SELECT ABS((SELECT COUNT(*) FROM outbox WHERE kind = 'booking.confirmed') \
             - (SELECT COUNT(*) FROM bookings))",
        ),
        (
            "cancelled-events",
            "exactly one booking.cancelled event per cancelled booking",
            "SELECT ABS((SELECT COUNT(*) FROM outbox WHERE kind = 'booking.cancelled') \
             - (SELECT COUNT(*) FROM bookings WHERE status = 'cancelled'))",
        ),
    ];
    for (name, rule, sql) in counted {
        let violations = count(db, statement(db.get_database_backend(), sql, [])).await?;
        checks.push(Check { name, rule, violations });
    }
    checks.push(Check {
        name: "dose-pairs",
        rule: "every active first dose of a two-dose vaccine has its second, same centre, inside the interval",
        violations: incomplete_pairs(db).await?,
    });
    Ok(checks)
}

/// Slots where booked places plus holds still alive at `now` exceed the
/// capacity: cheap enough to watch during a run.
pub async fn over_capacity(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let sql = "SELECT COUNT(*) FROM slots s WHERE s.booked + (SELECT COUNT(*) FROM holds h \
               WHERE h.slot_id = s.id AND h.state = 'live' AND h.expires_at > ?) > s.capacity";
    count(db, statement(db.get_database_backend(), sql, [now.into()])).await
}

async fn count(db: &impl ConnectionTrait, statement: sea_orm::Statement) -> Result<u64, DbErr> {
    let row = db.query_one_raw(statement).await?.ok_or_else(|| DbErr::RecordNotFound("a count".into()))?;
    let n = row.try_get_by_index::<i64>(0).or_else(|_| row.try_get_by_index::<i32>(0).map(i64::from))?;
    Ok(n.unsigned_abs())
}

/// Primary series whose doses do not make a complete, valid pair.
async fn incomplete_pairs(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let rules: HashMap<String, _> = all_vaccines(db).await?.into_iter().map(|v| (v.code.clone(), v)).collect();
    let rows = db
        .query_all_raw(statement(
            db.get_database_backend(),
            "SELECT a.booking_id, a.dose, a.vaccine, a.centre_id, a.starts_at FROM appointments a \
             JOIN bookings b ON b.id = a.booking_id WHERE b.status = 'confirmed' AND b.series = 'primary'",
            [],
        ))
        .await?;
    // (dose, vaccine, centre, start) of each confirmed appointment.
    type Dose = (i32, String, String, DateTime<Utc>);
    let mut by_booking: HashMap<String, Vec<Dose>> = HashMap::new();
    for row in rows {
        by_booking.entry(row.try_get("", "booking_id")?).or_default().push((
            row.try_get("", "dose")?,
            row.try_get("", "vaccine")?,
            row.try_get("", "centre_id")?,
            row.try_get("", "starts_at")?,
        ));
    }
    let mut broken = 0;
    for doses in by_booking.values_mut() {
        doses.sort_by_key(|d| d.0);
        let Some(rule) = rules.get(&doses[0].1) else {
            broken += 1;
            continue;
        };
        let complete = match doses.as_slice() {
            [first] => !rule.needs_second_dose() && first.0 == 1,
            [first, second] => {
                rule.needs_second_dose()
                    && (first.0, second.0) == (1, 2)
                    && first.1 == second.1
                    && first.2 == second.2
                    && rule.second_dose_fits(first.3, second.3)
            }
            _ => false,
        };
        if !complete {
            broken += 1;
        }
    }
    Ok(broken)
}
