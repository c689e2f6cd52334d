//! Reading the rules and catalogues the eligibility migrations create.

use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QueryOrder};

use crate::domain::{Catalogues, Rule};

pub mod entities {
    pub mod rule {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "eligibility_rules")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub code: String,
            pub min_age: Option<i32>,
            pub profession: Option<String>,
            pub requires_condition: bool,
            pub effective_from: Date,
            pub priority: i32,
            pub reason_fr: String,
            pub reason_en: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod condition {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "eligibility_conditions")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub code: String,
            pub label_fr: String,
            pub label_en: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod profession {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "eligibility_professions")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub code: String,
            pub label_fr: String,
            pub label_en: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entities::{condition, profession, rule};

pub async fn load_rules(db: &DatabaseConnection) -> Result<Vec<Rule>, DbErr> {
    let rows = rule::Entity::find().order_by_asc(rule::Column::Priority).all(db).await?;
    Ok(rows
        .into_iter()
        .map(|r| Rule {
            code: r.code,
            min_age: r.min_age.and_then(|a| u32::try_from(a).ok()),
            profession: r.profession,
            requires_condition: r.requires_condition,
            effective_from: r.effective_from,
            priority: r.priority,
            reason_fr: r.reason_fr,
            reason_en: r.reason_en,
        })
        .collect())
}

pub async fn load_catalogues(db: &DatabaseConnection) -> Result<Catalogues, DbErr> {
    let conditions = condition::Entity::find().all(db).await?;
    let professions = profession::Entity::find().all(db).await?;
    Ok(Catalogues {
        conditions: conditions.into_iter().map(|c| c.code).collect(),
        professions: professions.into_iter().map(|p| p.code).collect(),
    })
}
