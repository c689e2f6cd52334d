//! Every change to slots is recorded per centre (`availability_changes`),
//! so each replica streams the availability of the centres that changed,
//! whichever replica changed them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::create_change_feed(manager, "availability_changes", "slots", "centre_id").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_change_feed(manager, "availability_changes", "slots").await
    }
}
