use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReceivedEvents {
    Table,
    EventId,
    Kind,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    EventId,
    Channel,
    Recipient,
    Subject,
    Body,
    Language,
    CreatedAt,
    SentAt,
    LeaseUntil,
    Attempts,
    LastError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Its primary key is what makes at-least-once relaying deliver once.
        manager
            .create_table(
                Table::create()
                    .table(ReceivedEvents::Table)
                    .col(string(ReceivedEvents::EventId).primary_key())
                    .col(string(ReceivedEvents::Kind))
                    .col(timestamp_with_time_zone(ReceivedEvents::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(string(Messages::Id).primary_key())
                    .col(string(Messages::EventId))
                    .col(string(Messages::Channel))
                    .col(string(Messages::Recipient))
                    .col(string(Messages::Subject))
                    .col(text(Messages::Body))
                    .col(string(Messages::Language))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone_null(Messages::SentAt))
                    .col(timestamp_with_time_zone_null(Messages::LeaseUntil))
                    .col(integer(Messages::Attempts).default(0))
                    .col(text_null(Messages::LastError))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::EventId)
                            .to(ReceivedEvents::Table, ReceivedEvents::EventId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX idx_messages_unsent ON messages (created_at) WHERE sent_at IS NULL")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Messages::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ReceivedEvents::Table).to_owned()).await
    }
}
