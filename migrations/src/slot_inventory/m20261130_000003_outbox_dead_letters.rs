//! The outbox acknowledges per event: an event that keeps failing waits
//! longer between attempts (`next_attempt_at`) and, past a cap, is set
//! aside as a dead letter (`dead_at`, with its reason) while the others
//! flow. Events of one booking (`aggregate`, its reference) are delivered
//! in the order they happened. An operator replays dead letters once the
//! cause is fixed.
//!
//! On PostgreSQL this runs outside a transaction while the previous
//! version still serves: the columns are added without a default (no table
//! rewrite), only pending rows are touched, and the indexes are built
//! concurrently, so bookings keep writing to the outbox meanwhile. Every
//! step may be run again if the migration is interrupted.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = [
            "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS next_attempt_at timestamp with time zone, \
                 ADD COLUMN IF NOT EXISTS dead_at timestamp with time zone, \
                 ADD COLUMN IF NOT EXISTS last_error text, ADD COLUMN IF NOT EXISTS aggregate varchar",
            // Attempts used to count claims; from now on they count failures.
            "UPDATE outbox SET attempts = 0 WHERE published_at IS NULL AND attempts <> 0",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_outbox_pending_aggregate ON outbox (aggregate, id) \
                 WHERE published_at IS NULL",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_outbox_dead ON outbox (dead_at) WHERE dead_at IS NOT NULL",
        ];
        // SQLite alters one column at a time; it runs on one machine.
        let sqlite = [
            "ALTER TABLE outbox ADD COLUMN next_attempt_at timestamp_with_timezone_text",
            "ALTER TABLE outbox ADD COLUMN dead_at timestamp_with_timezone_text",
            "ALTER TABLE outbox ADD COLUMN last_error text",
            "ALTER TABLE outbox ADD COLUMN aggregate varchar",
            "UPDATE outbox SET attempts = 0 WHERE published_at IS NULL AND attempts <> 0",
            "CREATE INDEX IF NOT EXISTS idx_outbox_pending_aggregate ON outbox (aggregate, id) \
                 WHERE published_at IS NULL",
            "CREATE INDEX IF NOT EXISTS idx_outbox_dead ON outbox (dead_at) WHERE dead_at IS NOT NULL",
        ];
        crate::execute_each(manager, &postgres, &sqlite).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for index in ["idx_outbox_dead", "idx_outbox_pending_aggregate"] {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {index}")).await?;
        }
        for column in ["aggregate", "last_error", "dead_at", "next_attempt_at"] {
            db.execute_unprepared(&format!("ALTER TABLE outbox DROP COLUMN {column}")).await?;
        }
        Ok(())
    }
}
