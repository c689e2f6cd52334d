//! What makes a run fail: the database's word against the crowd's, and
//! the limits each preset holds the platform to.

use std::collections::HashMap;

use anyhow::bail;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::record::CitizenRecord;
use super::report::{Ledger, Report};
use super::scenario::Preset;

/// Fails the run on anything a correct platform never does; the smoke
/// preset also holds the platform to no errors at all.
pub fn verdict(report: &Report) -> anyhow::Result<()> {
    let broken = report.broken_invariants();
    if !broken.is_empty() {
        let names: Vec<&str> = broken.iter().map(|c| c.name).collect();
        bail!("INVARIANTS BROKEN: {}", names.join(", "));
    }
    if let Some(ledger) = &report.ledger
        && ledger.acknowledged_but_missing > 0
    {
        bail!("{} acknowledged bookings are missing from the database", ledger.acknowledged_but_missing);
    }
    if report.unexpected_answers > 0 {
        bail!("{} unexpected answers (4xx a correct server never gives this client)", report.unexpected_answers);
    }
    if report.liveness_failures() > 0 {
        bail!(
            "{} liveness probes failed on live services: Kubernetes would have restarted them",
            report.liveness_failures()
        );
    }
    if let Some(d) = &report.delivery
        && (d.missing > 0 || d.duplicates > 0 || d.dead_letters > 0 || d.drained_in_s.is_none())
    {
        bail!(
            "notifications: {} missing, {} sent twice, {} dead letters, drained: {}",
            d.missing,
            d.duplicates,
            d.dead_letters,
            d.drained_in_s.is_some()
        );
    }
    if let Some(failed) = report.faults.iter().find(|f| f.error.is_some() || f.back_s.is_none()) {
        bail!("fault {} did not run as asked or its target never came back", failed.fault);
    }
    if !report.faults.is_empty() && report.hard_server_errors() > 0 {
        bail!("{} 5xx other than 503 during a run with faults: an outage must be a 503", report.hard_server_errors());
    }
    // With faults, 503s are what an outage should look like.
    if report.scenario.preset == Preset::Smoke && report.faults.is_empty() {
        let (errors, timeouts) = (report.server_errors(), report.timeouts() + report.not_sent());
        if errors + timeouts > 0 {
            bail!("smoke: {errors} 5xx and {timeouts} timeouts at a load this machine must hold");
        }
        if report.selling.bookings == 0 {
            bail!("smoke: nobody booked");
        }
    }
    Ok(())
}

/// Every acknowledged booking against the database's own list.
pub async fn ledger(db: &DatabaseConnection, records: &[CitizenRecord]) -> anyhow::Result<Ledger> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT reference, status FROM bookings",
        ))
        .await?;
    let mut stored: HashMap<String, String> = HashMap::with_capacity(rows.len());
    for row in rows {
        stored.insert(row.try_get("", "reference")?, row.try_get("", "status")?);
    }
    let mut missing = 0;
    for r in records {
        let Some(reference) = &r.reference else { continue };
        let fine = match stored.remove(reference).as_deref() {
            Some("cancelled") => r.cancelled || r.cancel_unanswered,
            Some("confirmed") => !r.cancelled,
            _ => false,
        };
        if !fine {
            missing += 1;
        }
    }
    Ok(Ledger { acknowledged_but_missing: missing, confirmed_unacknowledged: stored.len() as u64 })
}
