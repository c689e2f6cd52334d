//! Migrations are the schema: every service's migrations apply, roll back
//! completely, and apply again, on both databases.

use creneau_kit::testing::{Backend, TestDatabase};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1",
    };
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter().map(|r| r.try_get::<String>("", "name").unwrap()).collect()
}

async fn up_down_up(backend: Backend) {
    let Some(database) = TestDatabase::new(backend).await else { return };
    let db = creneau_kit::db::connect(&database.settings()).await.unwrap();
    for service in creneau_migrations::SERVICES {
        creneau_migrations::up(service, &db).await.unwrap();
        assert_eq!(creneau_migrations::pending(service, &db).await.unwrap(), 0, "{service}");
    }
    let all = tables(&db).await;
    for expected in
        ["rule_sets", "centres", "postcodes", "slots", "bookings", "outbox", "messages", "queue_joins", "queue_room"]
    {
        assert!(all.iter().any(|t| t == expected), "{expected} missing from {all:?}");
    }
    for service in creneau_migrations::SERVICES {
        creneau_migrations::down(service, &db).await.unwrap();
        assert!(creneau_migrations::pending(service, &db).await.unwrap() > 0, "{service}");
    }
    let left: Vec<String> = tables(&db).await.into_iter().filter(|t| !t.starts_with("seaql_migrations")).collect();
    assert!(left.is_empty(), "down leaves tables behind: {left:?}");
    for service in creneau_migrations::SERVICES {
        creneau_migrations::up(service, &db).await.unwrap();
    }
    // Seeded reference data is back too.
    let rows = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM postcodes"))
        .await
        .unwrap()
        .unwrap();
    assert!(rows.try_get::<i64>("", "n").unwrap() > 50);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_round_trip_postgres() {
    up_down_up(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_round_trip_sqlite() {
    up_down_up(Backend::Sqlite).await;
}
