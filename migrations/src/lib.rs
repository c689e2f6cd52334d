//! Schema migrations, one migrator per service: each service migrates only
//! its own tables and records them in its own migration table, so services
//! can share a database server (or one database) without touching each
//! other's schema. Run them with `creneau migrate` or a Kubernetes Job, never
//! at server start.
#![forbid(unsafe_code)]

pub mod centre_directory;
pub mod eligibility;
pub mod gateway;
pub mod notification;
pub mod slot_inventory;

pub use sea_orm_migration::{MigratorTrait, sea_orm};

/// Services that own tables, in the order `migrate all` runs them.
pub const SERVICES: &[&str] = &["eligibility", "centre-directory", "slot-inventory", "notification", "gateway"];

/// Applies pending migrations of `service` (a name from [`SERVICES`]).
pub async fn up(service: &str, db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    match service {
        "eligibility" => eligibility::Migrator::up(db, None).await,
        "centre-directory" => centre_directory::Migrator::up(db, None).await,
        "slot-inventory" => slot_inventory::Migrator::up(db, None).await,
        "notification" => notification::Migrator::up(db, None).await,
        "gateway" => gateway::Migrator::up(db, None).await,
        other => Err(sea_orm::DbErr::Custom(format!("no migrations for service {other:?}"))),
    }
}

/// Rolls back every migration of `service`.
pub async fn down(service: &str, db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    match service {
        "eligibility" => eligibility::Migrator::down(db, None).await,
        "centre-directory" => centre_directory::Migrator::down(db, None).await,
        "slot-inventory" => slot_inventory::Migrator::down(db, None).await,
        "notification" => notification::Migrator::down(db, None).await,
        "gateway" => gateway::Migrator::down(db, None).await,
        other => Err(sea_orm::DbErr::Custom(format!("no migrations for service {other:?}"))),
    }
}

/// How many migrations of `service` are not applied yet; readiness needs 0.
pub async fn pending(service: &str, db: &sea_orm::DatabaseConnection) -> Result<usize, sea_orm::DbErr> {
    let pending = match service {
        "eligibility" => eligibility::Migrator::get_pending_migrations_read_only(db).await?,
        "centre-directory" => centre_directory::Migrator::get_pending_migrations_read_only(db).await?,
        "slot-inventory" => slot_inventory::Migrator::get_pending_migrations_read_only(db).await?,
        "notification" => notification::Migrator::get_pending_migrations_read_only(db).await?,
        "gateway" => gateway::Migrator::get_pending_migrations_read_only(db).await?,
        other => return Err(sea_orm::DbErr::Custom(format!("no migrations for service {other:?}"))),
    };
    Ok(pending.len())
}

/// Runs `postgres` or `sqlite`, one statement at a time, as the backend
/// is: for migrations that run outside a transaction on PostgreSQL, where
/// each statement must be safe to run again after an interruption.
pub(crate) async fn execute_each(
    manager: &sea_orm_migration::SchemaManager<'_>,
    postgres: &[&str],
    sqlite: &[&str],
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    let statements = match manager.get_database_backend() {
        sea_orm::DbBackend::Postgres => postgres,
        _ => sqlite,
    };
    for sql in statements {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

macro_rules! migrator {
    ($table:literal, [$($migration:path),+ $(,)?]) => {
        pub struct Migrator;

        #[sea_orm_migration::async_trait::async_trait]
        impl sea_orm_migration::MigratorTrait for Migrator {
            fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
                vec![$(Box::new($migration)),+]
            }

            fn migration_table_name() -> sea_orm_migration::sea_orm::DynIden {
                use sea_orm_migration::sea_query::IntoIden;
                sea_orm_migration::sea_query::Alias::new($table).into_iden()
            }
        }
    };
}
pub(crate) use migrator;

/// A change feed: `feed` records the `key` of every row of `source` that a
/// transaction inserts, updates or deletes, written by triggers so that no
/// code path can change `source` without it being seen. Readers tail it
/// by position: on PostgreSQL the writing transaction's id (`txid`), read
/// only below the oldest transaction still running, so a slow transaction
/// that commits late is never skipped; on SQLite, where writers take turns,
/// the row's sequence number.
pub(crate) async fn create_change_feed(
    manager: &sea_orm_migration::SchemaManager<'_>,
    feed: &str,
    source: &str,
    key: &str,
) -> Result<(), sea_orm::DbErr> {
    let postgres = [
        format!(
            "CREATE TABLE IF NOT EXISTS {feed} (seq bigserial PRIMARY KEY, {key} varchar NOT NULL, \
             txid bigint NOT NULL)"
        ),
        format!("CREATE INDEX IF NOT EXISTS idx_{feed}_txid ON {feed} (txid)"),
        // One row per key and statement: a bulk insert of slots records each
        // centre once, not each slot.
        format!(
            "CREATE OR REPLACE FUNCTION {feed}_from_new() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             INSERT INTO {feed} ({key}, txid) SELECT DISTINCT {key}, txid_current() FROM changed; \
             RETURN NULL; END $$"
        ),
        format!("DROP TRIGGER IF EXISTS {feed}_insert ON {source}"),
        format!(
            "CREATE TRIGGER {feed}_insert AFTER INSERT ON {source} REFERENCING NEW TABLE AS changed \
             FOR EACH STATEMENT EXECUTE FUNCTION {feed}_from_new()"
        ),
        format!("DROP TRIGGER IF EXISTS {feed}_update ON {source}"),
        format!(
            "CREATE TRIGGER {feed}_update AFTER UPDATE ON {source} REFERENCING NEW TABLE AS changed \
             FOR EACH STATEMENT EXECUTE FUNCTION {feed}_from_new()"
        ),
        format!("DROP TRIGGER IF EXISTS {feed}_delete ON {source}"),
        format!(
            "CREATE TRIGGER {feed}_delete AFTER DELETE ON {source} REFERENCING OLD TABLE AS changed \
             FOR EACH STATEMENT EXECUTE FUNCTION {feed}_from_new()"
        ),
    ];
    let sqlite = [
        format!(
            "CREATE TABLE IF NOT EXISTS {feed} (seq INTEGER PRIMARY KEY AUTOINCREMENT, {key} varchar NOT NULL, \
             txid bigint NOT NULL DEFAULT 0)"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {feed}_insert AFTER INSERT ON {source} \
             BEGIN INSERT INTO {feed} ({key}) VALUES (NEW.{key}); END"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {feed}_update AFTER UPDATE ON {source} \
             BEGIN INSERT INTO {feed} ({key}) VALUES (NEW.{key}); END"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {feed}_delete AFTER DELETE ON {source} \
             BEGIN INSERT INTO {feed} ({key}) VALUES (OLD.{key}); END"
        ),
    ];
    let (postgres, sqlite): (Vec<&str>, Vec<&str>) =
        (postgres.iter().map(String::as_str).collect(), sqlite.iter().map(String::as_str).collect());
    execute_each(manager, &postgres, &sqlite).await
}

pub(crate) async fn drop_change_feed(
    manager: &sea_orm_migration::SchemaManager<'_>,
    feed: &str,
    source: &str,
) -> Result<(), sea_orm::DbErr> {
    let triggers = ["insert", "update", "delete"];
    let mut postgres: Vec<String> =
        triggers.iter().map(|t| format!("DROP TRIGGER IF EXISTS {feed}_{t} ON {source}")).collect();
    postgres.push(format!("DROP FUNCTION IF EXISTS {feed}_from_new()"));
    postgres.push(format!("DROP TABLE IF EXISTS {feed}"));
    let mut sqlite: Vec<String> = triggers.iter().map(|t| format!("DROP TRIGGER IF EXISTS {feed}_{t}")).collect();
    sqlite.push(format!("DROP TABLE IF EXISTS {feed}"));
    let (postgres, sqlite): (Vec<&str>, Vec<&str>) =
        (postgres.iter().map(String::as_str).collect(), sqlite.iter().map(String::as_str).collect());
    execute_each(manager, &postgres, &sqlite).await
}
