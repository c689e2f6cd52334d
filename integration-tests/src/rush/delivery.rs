//! After the run: was every event told to its citizen, exactly once? Waits
//! until the outbox and the messages are drained (after a notification
//! outage, the backlog), then reads the maildir.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Events the outbox holds (bookings, cancellations, moves).
    pub events: u64,
    /// Events and messages set aside as dead letters.
    pub dead_letters: u64,
    /// Message files in the maildir.
    pub messages: u64,
    /// Events (not dead letters) with no message.
    pub missing: u64,
    /// Messages beyond the first for one event.
    pub duplicates: u64,
    /// From the end of the crowd and of the faults to a drained queue.
    pub drained_in_s: Option<f64>,
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<u64> {
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql.to_owned())).await?;
    Ok(row.map_or(0, |r| r.try_get_by_index::<i64>(0).unwrap_or(0).unsigned_abs()))
}

pub async fn check(db: &DatabaseConnection, maildir: &Path, patience: Duration) -> anyhow::Result<Delivery> {
    let started = Instant::now();
    let pending = "SELECT (SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND dead_at IS NULL) \
                   + (SELECT COUNT(*) FROM messages WHERE sent_at IS NULL AND dead_at IS NULL)";
    let mut drained_in_s = None;
    while started.elapsed() < patience {
        if count(db, pending).await.unwrap_or(1) == 0 {
            drained_in_s = Some(started.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let events: Vec<String> = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT event_id FROM outbox WHERE dead_at IS NULL".to_owned(),
        ))
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "event_id"))
        .collect::<Result<_, _>>()?;
    let dead_events = count(db, "SELECT COUNT(*) FROM outbox WHERE dead_at IS NOT NULL").await?;
    let dead_letters = dead_events + count(db, "SELECT COUNT(*) FROM messages WHERE dead_at IS NOT NULL").await?;
    let told = told(maildir);
    let messages = told.values().sum();
    let missing = events.iter().filter(|id| !told.contains_key(id.as_str())).count() as u64;
    let duplicates = told.values().map(|n| n - 1).sum();
    Ok(Delivery {
        events: events.len() as u64 + dead_events,
        dead_letters,
        messages,
        missing,
        duplicates,
        drained_in_s,
    })
}

/// Messages per event id, from each file's `X-Creneau-Event` header.
fn told(maildir: &Path) -> HashMap<String, u64> {
    let mut told = HashMap::new();
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else { return told };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let event = text.lines().take_while(|l| !l.is_empty()).find_map(|l| l.strip_prefix("X-Creneau-Event: "));
        if let Some(event) = event {
            *told.entry(event.trim().to_owned()).or_insert(0) += 1;
        }
    }
    told
}
