//! The outbox acknowledges per event: an event that keeps failing waits
//! longer between attempts (`next_attempt_at`) and, past a cap, is set
//! aside as a dead letter (`dead_at`, with its reason) while the others
//! flow. An operator replays dead letters once the cause is fixed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    NextAttemptAt,
    DeadAt,
    LastError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            timestamp_with_time_zone_null(Outbox::NextAttemptAt),
            timestamp_with_time_zone_null(Outbox::DeadAt),
            text_null(Outbox::LastError),
        ] {
            manager.alter_table(Table::alter().table(Outbox::Table).add_column(column).to_owned()).await?;
        }
        // Attempts used to count claims; from now on they count failures.
        manager.get_connection().execute_unprepared("UPDATE outbox SET attempts = 0").await?;
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX idx_outbox_unpublished").await?;
        db.execute_unprepared(
            "CREATE INDEX idx_outbox_unpublished ON outbox (id) WHERE published_at IS NULL AND dead_at IS NULL",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX idx_outbox_dead ON outbox (dead_at) WHERE dead_at IS NOT NULL").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX idx_outbox_dead").await?;
        db.execute_unprepared("DROP INDEX idx_outbox_unpublished").await?;
        db.execute_unprepared("CREATE INDEX idx_outbox_unpublished ON outbox (id) WHERE published_at IS NULL").await?;
        for column in [Outbox::LastError, Outbox::DeadAt, Outbox::NextAttemptAt] {
            manager.alter_table(Table::alter().table(Outbox::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
