//! Messages that cannot be sent wait longer between attempts
//! (`next_attempt_at`) and, past a cap, are set aside as dead letters
//! (`dead_at`, with `last_error`) while the others go out.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    NextAttemptAt,
    DeadAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in
            [timestamp_with_time_zone_null(Messages::NextAttemptAt), timestamp_with_time_zone_null(Messages::DeadAt)]
        {
            manager.alter_table(Table::alter().table(Messages::Table).add_column(column).to_owned()).await?;
        }
        // Attempts used to count claims; from now on they count failures.
        let db = manager.get_connection();
        db.execute_unprepared("UPDATE messages SET attempts = 0 WHERE last_error IS NULL").await?;
        db.execute_unprepared("DROP INDEX idx_messages_unsent").await?;
        db.execute_unprepared(
            "CREATE INDEX idx_messages_unsent ON messages (created_at) WHERE sent_at IS NULL AND dead_at IS NULL",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX idx_messages_dead ON messages (dead_at) WHERE dead_at IS NOT NULL").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX idx_messages_dead").await?;
        db.execute_unprepared("DROP INDEX idx_messages_unsent").await?;
        db.execute_unprepared("CREATE INDEX idx_messages_unsent ON messages (created_at) WHERE sent_at IS NULL")
            .await?;
        for column in [Messages::DeadAt, Messages::NextAttemptAt] {
            manager.alter_table(Table::alter().table(Messages::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
