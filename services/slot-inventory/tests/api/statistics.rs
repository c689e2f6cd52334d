//! Planner statistics kept fresh while the booking tables grow: a plan cached
//! on a near-empty table must not outlive the table's growth.

use std::time::{Duration, Instant};

use creneau_kit::statistics::StatisticsKeeper;
use creneau_kit::testing::{Backend, TestDatabase};
use creneau_slot_inventory::GROWING_TABLES;
use sea_orm::{ConnectionTrait, DatabaseConnection};

async fn insert_keys(db: &impl ConnectionTrait, from: usize, to: usize) {
    db.execute_unprepared(&format!(
        "INSERT INTO idempotency_keys (\"key\", request_hash, booking_id, secret, created_at, expires_at) \
         SELECT 'k' || i, 'h', 'b' || i, 's', now(), now() + interval '1 day' FROM generate_series({from}, {to}) AS i"
    ))
    .await
    .unwrap();
}

/// The plan the session's prepared key lookup runs with.
async fn lookup_plan(session: &DatabaseConnection) -> String {
    let rows = session
        .query_all_raw(sea_orm::Statement::from_string(
            session.get_database_backend(),
            "EXPLAIN EXECUTE known('k5', now())",
        ))
        .await
        .unwrap();
    rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn a_cached_plan_is_replanned_on_the_index_once_the_table_has_grown() {
    let Some((database, db)) = TestDatabase::migrated(Backend::Postgres, "slot-inventory").await else {
        return;
    };
    // Autovacuum would refresh the statistics on its own, only later;
    // here it must not do the keeper's work in its stead.
    db.execute_unprepared("ALTER TABLE idempotency_keys SET (autovacuum_enabled = false)").await.unwrap();
    insert_keys(&db, 1, 10).await;
    db.execute_unprepared("ANALYZE idempotency_keys").await.unwrap();

    // One connection, as a pooled one of slot-inventory: its cached plan
    // for the glance's key lookup is made on a one-page table.
    let mut settings = database.settings();
    settings.max_connections = Some(1);
    let session = creneau_kit::db::connect(&settings).await.unwrap();
    session.execute_unprepared("SET plan_cache_mode = force_generic_plan").await.unwrap();
    session
        .execute_unprepared(
            "PREPARE known(text, timestamptz) AS SELECT COUNT(*) FROM idempotency_keys k \
             WHERE k.\"key\" = $1 AND (k.expires_at IS NULL OR k.expires_at > $2)",
        )
        .await
        .unwrap();
    assert!(lookup_plan(&session).await.contains("Seq Scan"), "a one-page table is scanned");

    insert_keys(&db, 11, 5_000).await;
    assert!(lookup_plan(&session).await.contains("Seq Scan"), "the cached plan outlives the growth");

    let keeper = StatisticsKeeper::new(db.clone(), GROWING_TABLES, Duration::from_secs(1)).expect("PostgreSQL");
    // Row counts reach the statistics views within a second or so.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let analysed = keeper.refresh_once().await.unwrap();
        if analysed.contains(&"idempotency_keys".to_owned()) {
            break;
        }
        assert!(Instant::now() < deadline, "the keeper never analysed the grown table");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let plan = lookup_plan(&session).await;
    assert!(plan.contains("idempotency_keys_pkey") && !plan.contains("Seq Scan"), "replanned on the index: {plan}");
    assert!(keeper.refresh_once().await.unwrap().is_empty(), "fresh statistics are left alone");
}

#[tokio::test]
async fn sqlite_needs_no_keeper() {
    let (_database, db) = TestDatabase::migrated(Backend::Sqlite, "slot-inventory").await.unwrap();
    assert!(StatisticsKeeper::new(db, GROWING_TABLES, Duration::from_secs(1)).is_none());
}
