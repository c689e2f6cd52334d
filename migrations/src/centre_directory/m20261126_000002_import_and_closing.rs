//! The commune's INSEE code (imported centres carry it) and a closing
//! time: a centre is visible from `publish_at` until `closes_at`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Centres {
    Table,
    Insee,
    ClosesAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        manager
            .alter_table(Table::alter().table(Centres::Table).add_column(string_null(Centres::Insee)).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Centres::Table)
                    .add_column(timestamp_with_time_zone_null(Centres::ClosesAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_centres_insee").table(Centres::Table).col(Centres::Insee).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_centres_insee").table(Centres::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Centres::Table).drop_column(Centres::ClosesAt).to_owned()).await?;
        manager.alter_table(Table::alter().table(Centres::Table).drop_column(Centres::Insee).to_owned()).await
    }
}
