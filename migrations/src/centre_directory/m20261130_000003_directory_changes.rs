//! Every change to centres is recorded (`directory_changes`), so every
//! replica's in-memory directory follows writes made through any replica.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_change_feed(manager, "directory_changes", "centres", "id").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_change_feed(manager, "directory_changes", "centres").await
    }
}
