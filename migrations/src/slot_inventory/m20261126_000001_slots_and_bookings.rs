use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Slots {
    Table,
    Id,
    CentreId,
    Vaccine,
    StartsAt,
    EndsAt,
    Capacity,
    Booked,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
    Reference,
    SecretHash,
    IdentityKey,
    Status,
    FirstName,
    LastName,
    BirthDate,
    Email,
    Phone,
    Language,
    CreatedAt,
    CancelledAt,
}

#[derive(DeriveIden)]
enum Appointments {
    Table,
    BookingId,
    Dose,
    SlotId,
    CentreId,
    Vaccine,
    StartsAt,
    EndsAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Key,
    RequestHash,
    BookingId,
    Secret,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    EventId,
    Kind,
    Payload,
    OccurredAt,
    LeaseUntil,
    PublishedAt,
    Attempts,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Slots::Table)
                    .col(string(Slots::Id).primary_key())
                    .col(string(Slots::CentreId))
                    .col(string(Slots::Vaccine))
                    .col(timestamp_with_time_zone(Slots::StartsAt))
                    .col(timestamp_with_time_zone(Slots::EndsAt))
                    .col(integer(Slots::Capacity))
                    .col(integer(Slots::Booked).default(0))
                    .col(timestamp_with_time_zone(Slots::CreatedAt))
                    // The last line of defence against overbooking: even a
                    // buggy statement cannot commit booked > capacity.
                    .check(Expr::col(Slots::Booked).gte(0))
                    .check(Expr::col(Slots::Booked).lte(Expr::col(Slots::Capacity)))
                    .check(Expr::col(Slots::Capacity).gt(0))
                    .check(Expr::col(Slots::EndsAt).gt(Expr::col(Slots::StartsAt)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_slots_centre_vaccine_start")
                    .table(Slots::Table)
                    .col(Slots::CentreId)
                    .col(Slots::Vaccine)
                    .col(Slots::StartsAt)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_slots_centre_start")
                    .table(Slots::Table)
                    .col(Slots::CentreId)
                    .col(Slots::StartsAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Bookings::Table)
                    .col(string(Bookings::Id).primary_key())
                    .col(string_uniq(Bookings::Reference))
                    .col(string(Bookings::SecretHash))
                    .col(string(Bookings::IdentityKey))
                    .col(string(Bookings::Status))
                    .col(string(Bookings::FirstName))
                    .col(string(Bookings::LastName))
                    .col(date(Bookings::BirthDate))
                    .col(string_null(Bookings::Email))
                    .col(string_null(Bookings::Phone))
                    .col(string(Bookings::Language))
                    .col(timestamp_with_time_zone(Bookings::CreatedAt))
                    .col(timestamp_with_time_zone_null(Bookings::CancelledAt))
                    .check(Expr::col(Bookings::Status).is_in(["confirmed", "cancelled"]))
                    .to_owned(),
            )
            .await?;
        // One active booking per person, enforced by the database: two
        // concurrent bookings of the same person cannot both commit.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_bookings_active_identity ON bookings (identity_key) \
                 WHERE status = 'confirmed'",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Appointments::Table)
                    .col(string(Appointments::BookingId))
                    .col(integer(Appointments::Dose))
                    .col(string(Appointments::SlotId))
                    .col(string(Appointments::CentreId))
                    .col(string(Appointments::Vaccine))
                    .col(timestamp_with_time_zone(Appointments::StartsAt))
                    .col(timestamp_with_time_zone(Appointments::EndsAt))
                    .primary_key(Index::create().col(Appointments::BookingId).col(Appointments::Dose))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Appointments::Table, Appointments::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Appointments::Table, Appointments::SlotId)
                            .to(Slots::Table, Slots::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_appointments_slot")
                    .table(Appointments::Table)
                    .col(Appointments::SlotId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(string(IdempotencyKeys::Key).primary_key())
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(string(IdempotencyKeys::BookingId))
                    // A client retrying after a lost response must get its
                    // secret back; kept only until the key expires.
                    .col(string(IdempotencyKeys::Secret))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_pk_auto(Outbox::Id))
                    .col(string_uniq(Outbox::EventId))
                    .col(string(Outbox::Kind))
                    .col(text(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::OccurredAt))
                    .col(timestamp_with_time_zone_null(Outbox::LeaseUntil))
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .col(integer(Outbox::Attempts).default(0))
                    .to_owned(),
            )
            .await?;
        // The relay only ever looks at what is not yet published.
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX idx_outbox_unpublished ON outbox (id) WHERE published_at IS NULL")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            Appointments::Table.into_iden(),
            Bookings::Table.into_iden(),
            Slots::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
