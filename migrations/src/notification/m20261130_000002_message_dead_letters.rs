//! Messages that cannot be sent wait longer between attempts
//! (`next_attempt_at`) and, past a cap, are set aside as dead letters
//! (`dead_at`, with `last_error`) while the others go out.
//!
//! On PostgreSQL this runs outside a transaction while the previous
//! version still serves: columns without a default, only pending rows
//! touched, the index built concurrently. Every step may be run again.

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
            "ALTER TABLE messages ADD COLUMN IF NOT EXISTS next_attempt_at timestamp with time zone, \
                 ADD COLUMN IF NOT EXISTS dead_at timestamp with time zone",
            // Attempts used to count claims; from now on they count failures.
            "UPDATE messages SET attempts = 0 WHERE sent_at IS NULL AND attempts <> 0",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_messages_dead ON messages (dead_at) WHERE dead_at IS NOT NULL",
        ];
        let sqlite = [
            "ALTER TABLE messages ADD COLUMN next_attempt_at timestamp_with_timezone_text",
            "ALTER TABLE messages ADD COLUMN dead_at timestamp_with_timezone_text",
            "UPDATE messages SET attempts = 0 WHERE sent_at IS NULL AND attempts <> 0",
            "CREATE INDEX IF NOT EXISTS idx_messages_dead ON messages (dead_at) WHERE dead_at IS NOT NULL",
        ];
        crate::execute_each(manager, &postgres, &sqlite).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_messages_dead").await?;
        for column in ["dead_at", "next_attempt_at"] {
            db.execute_unprepared(&format!("ALTER TABLE messages DROP COLUMN {column}")).await?;
        }
        Ok(())
    }
}
