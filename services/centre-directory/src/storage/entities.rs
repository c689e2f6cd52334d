//! sea-orm entities for the tables the centre-directory migrations create.

pub mod centre {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "centres")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub address: String,
        pub postcode: String,
        pub city: String,
        pub department: String,
        pub lat: f64,
        pub lon: f64,
        pub accessible: bool,
        pub phone: String,
        pub publish_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub insee: Option<String>,
        pub closes_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod centre_vaccine {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "centre_vaccines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub centre_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub vaccine: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod postcode {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "postcodes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub postcode: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub insee: String,
        pub city: String,
        pub department: String,
        pub lat: f64,
        pub lon: f64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
