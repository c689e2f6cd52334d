use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Centres {
    Table,
    Id,
    Name,
    Address,
    Postcode,
    City,
    Department,
    Lat,
    Lon,
    Accessible,
    Phone,
    PublishAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CentreVaccines {
    Table,
    CentreId,
    Vaccine,
}

#[derive(DeriveIden)]
enum Postcodes {
    Table,
    Postcode,
    Insee,
    City,
    Department,
    Lat,
    Lon,
}

/// Reference data the directory resolves postcodes with: centroids of
/// the postcode areas of the largest French cities. Deployments load the
/// national file (La Poste's base officielle) the same way.
const POSTCODES: &str = include_str!("../../data/postcodes.csv");

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Centres::Table)
                    .col(string(Centres::Id).primary_key())
                    .col(string(Centres::Name))
                    .col(string(Centres::Address))
                    .col(string(Centres::Postcode))
                    .col(string(Centres::City))
                    .col(string(Centres::Department))
                    .col(double(Centres::Lat))
                    .col(double(Centres::Lon))
                    .col(boolean(Centres::Accessible))
                    .col(string(Centres::Phone))
                    .col(timestamp_with_time_zone(Centres::PublishAt))
                    .col(timestamp_with_time_zone(Centres::CreatedAt))
                    .col(timestamp_with_time_zone(Centres::UpdatedAt))
                    .check(Expr::col(Centres::Lat).between(-90.0, 90.0))
                    .check(Expr::col(Centres::Lon).between(-180.0, 180.0))
                    .to_owned(),
            )
            .await?;
        // Radius searches scan a latitude band first.
        manager
            .create_index(
                Index::create()
                    .name("idx_centres_lat_lon")
                    .table(Centres::Table)
                    .col(Centres::Lat)
                    .col(Centres::Lon)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CentreVaccines::Table)
                    .col(string(CentreVaccines::CentreId))
                    .col(string(CentreVaccines::Vaccine))
                    .primary_key(Index::create().col(CentreVaccines::CentreId).col(CentreVaccines::Vaccine))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CentreVaccines::Table, CentreVaccines::CentreId)
                            .to(Centres::Table, Centres::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Postcodes::Table)
                    .col(string(Postcodes::Postcode))
                    .col(string(Postcodes::Insee))
                    .col(string(Postcodes::City))
                    .col(string(Postcodes::Department))
                    .col(double(Postcodes::Lat))
                    .col(double(Postcodes::Lon))
                    .primary_key(Index::create().col(Postcodes::Postcode).col(Postcodes::Insee))
                    .to_owned(),
            )
            .await?;

        let mut insert = Query::insert();
        insert.into_table(Postcodes::Table).columns([
            Postcodes::Postcode,
            Postcodes::Insee,
            Postcodes::City,
            Postcodes::Department,
            Postcodes::Lat,
            Postcodes::Lon,
        ]);
        for line in POSTCODES.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(';').collect();
            let [postcode, insee, city, department, lat, lon] = f[..] else {
                return Err(DbErr::Migration(format!("bad postcode row {line:?}")));
            };
            let parse = |v: &str| v.parse::<f64>().map_err(|_| DbErr::Migration(format!("bad coordinate in {line:?}")));
            insert.values_panic([
                postcode.into(),
                insee.into(),
                city.into(),
                department.into(),
                parse(lat)?.into(),
                parse(lon)?.into(),
            ]);
        }
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Postcodes::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(CentreVaccines::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Centres::Table).to_owned()).await
    }
}
