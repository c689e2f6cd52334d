//! Holds, vaccines as data with their dose rules, schedules, closable
//! slots, primary/booster series and expiring idempotency keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Vaccines {
    Table,
    Code,
    Label,
    Doses,
    MinIntervalDays,
    MaxIntervalDays,
    BoosterMinDelayDays,
}

#[derive(DeriveIden)]
enum Slots {
    Table,
    Id,
    Status,
    ScheduleId,
}

#[derive(DeriveIden)]
enum Holds {
    Table,
    Id,
    SlotId,
    HolderKey,
    State,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Schedules {
    Table,
    Id,
    CentreId,
    Vaccine,
    StartDate,
    EndDate,
    Weekdays,
    Opens,
    Closes,
    SlotMinutes,
    Lines,
    TimeZone,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Series,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    ExpiresAt,
}

/// (code, label, doses, min interval, max interval, booster delay), the
/// schedules of the French 2021–2022 campaign.
const VACCINES: &[(&str, &str, i32, i32, i32, i32)] = &[
    ("pfizer", "Pfizer-BioNTech", 2, 21, 42, 90),
    ("moderna", "Moderna", 2, 28, 42, 90),
    ("astrazeneca", "AstraZeneca", 2, 63, 84, 90),
    ("janssen", "Janssen", 1, 0, 0, 30),
    ("novavax", "Novavax", 2, 21, 42, 90),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Vaccines::Table)
                    .col(string(Vaccines::Code).primary_key())
                    .col(string(Vaccines::Label))
                    .col(integer(Vaccines::Doses))
                    .col(integer(Vaccines::MinIntervalDays))
                    .col(integer(Vaccines::MaxIntervalDays))
                    .col(integer(Vaccines::BoosterMinDelayDays))
                    .check(Expr::col(Vaccines::Doses).is_in([1, 2]))
                    .check(Expr::col(Vaccines::MaxIntervalDays).gte(Expr::col(Vaccines::MinIntervalDays)))
                    .to_owned(),
            )
            .await?;
        let mut insert = Query::insert();
        insert.into_table(Vaccines::Table).columns([
            Vaccines::Code,
            Vaccines::Label,
            Vaccines::Doses,
            Vaccines::MinIntervalDays,
            Vaccines::MaxIntervalDays,
            Vaccines::BoosterMinDelayDays,
        ]);
        for (code, label, doses, min, max, booster) in VACCINES {
            insert.values_panic([
                (*code).into(),
                (*label).into(),
                (*doses).into(),
                (*min).into(),
                (*max).into(),
                (*booster).into(),
            ]);
        }
        manager.exec_stmt(insert).await?;

        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter().table(Slots::Table).add_column(string(Slots::Status).default("open")).to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(Slots::Table).add_column(string_null(Slots::ScheduleId)).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Bookings::Table)
                    .add_column(string(Bookings::Series).default("primary"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(timestamp_with_time_zone_null(IdempotencyKeys::ExpiresAt))
                    .to_owned(),
            )
            .await?;

        // One active booking per person and series: a booster can be booked
        // while the primary series booking is still on record.
        manager
            .drop_index(Index::drop().name("uq_bookings_active_identity").table(Alias::new("bookings")).to_owned())
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_bookings_active_identity_series ON bookings (identity_key, series) \
                 WHERE status = 'confirmed'",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Holds::Table)
                    .col(string(Holds::Id).primary_key())
                    .col(string(Holds::SlotId))
                    .col(string(Holds::HolderKey))
                    .col(string(Holds::State))
                    .col(timestamp_with_time_zone(Holds::ExpiresAt))
                    .col(timestamp_with_time_zone(Holds::CreatedAt))
                    .check(Expr::col(Holds::State).is_in(["live", "consumed", "released", "expired"]))
                    .foreign_key(ForeignKey::create().from(Holds::Table, Holds::SlotId).to(Slots::Table, Slots::Id))
                    .to_owned(),
            )
            .await?;
        // Counting a slot's live holds is on the booking path.
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX idx_holds_live_slot ON holds (slot_id, expires_at) WHERE state = 'live'")
            .await?;
        // One live hold per holder: nobody can sit on several places.
        manager
            .get_connection()
            .execute_unprepared("CREATE UNIQUE INDEX uq_holds_live_holder ON holds (holder_key) WHERE state = 'live'")
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Schedules::Table)
                    .col(string(Schedules::Id).primary_key())
                    .col(string(Schedules::CentreId))
                    .col(string(Schedules::Vaccine))
                    .col(date(Schedules::StartDate))
                    .col(date(Schedules::EndDate))
                    .col(integer(Schedules::Weekdays))
                    .col(string(Schedules::Opens))
                    .col(string(Schedules::Closes))
                    .col(integer(Schedules::SlotMinutes))
                    .col(integer(Schedules::Lines))
                    .col(string(Schedules::TimeZone))
                    .col(timestamp_with_time_zone(Schedules::CreatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Schedules::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Holds::Table).to_owned()).await?;
        manager
            .drop_index(
                Index::drop().name("uq_bookings_active_identity_series").table(Alias::new("bookings")).to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_bookings_active_identity ON bookings (identity_key) WHERE status = 'confirmed'",
            )
            .await?;
        for (table, column) in [
            (Alias::new("idempotency_keys"), Alias::new("expires_at")),
            (Alias::new("bookings"), Alias::new("series")),
            (Alias::new("slots"), Alias::new("schedule_id")),
            (Alias::new("slots"), Alias::new("status")),
        ] {
            manager.alter_table(Table::alter().table(table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(Vaccines::Table).to_owned()).await
    }
}
