use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EligibilityConditions {
    Table,
    Code,
    LabelFr,
    LabelEn,
}

#[derive(DeriveIden)]
enum EligibilityProfessions {
    Table,
    Code,
    LabelFr,
    LabelEn,
}

#[derive(DeriveIden)]
enum EligibilityRules {
    Table,
    Id,
    Code,
    MinAge,
    Profession,
    RequiresCondition,
    EffectiveFrom,
    Priority,
    ReasonFr,
    ReasonEn,
}

/// High-risk conditions of the French 2021 campaign (« très haut risque »).
const CONDITIONS: &[(&str, &str, &str)] = &[
    ("cancer_under_treatment", "Cancer en cours de traitement", "Cancer under treatment"),
    (
        "severe_kidney_disease",
        "Maladie rénale chronique sévère, dont dialyse",
        "Severe chronic kidney disease, including dialysis",
    ),
    ("organ_transplant", "Transplantation d'organe ou de cellules souches", "Organ or stem-cell transplant"),
    ("rare_disease", "Maladie rare à haut risque", "High-risk rare disease"),
    ("trisomy_21", "Trisomie 21", "Down syndrome"),
];

const PROFESSIONS: &[(&str, &str, &str)] = &[
    ("health_professional", "Professionnel de santé", "Health professional"),
    ("medico_social_worker", "Professionnel du secteur médico-social", "Medico-social care worker"),
    ("firefighter", "Sapeur-pompier", "Firefighter"),
];

/// (code, min age, profession, requires a condition, effective from, priority, reasons)
#[allow(clippy::type_complexity)]
const RULES: &[(&str, Option<i32>, Option<&str>, bool, &str, i32, &str, &str)] = &[
    ("age_75", Some(75), None, false, "2021-01-18", 10, "Vous avez 75 ans ou plus.", "You are 75 or older."),
    (
        "high_risk_condition",
        None,
        None,
        true,
        "2021-01-18",
        20,
        "Vous avez une pathologie à très haut risque.",
        "You have a very high-risk condition.",
    ),
    (
        "health_professional_50",
        Some(50),
        Some("health_professional"),
        false,
        "2021-02-06",
        30,
        "Vous êtes professionnel de santé et avez 50 ans ou plus.",
        "You are a health professional aged 50 or older.",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EligibilityConditions::Table)
                    .col(string(EligibilityConditions::Code).primary_key())
                    .col(string(EligibilityConditions::LabelFr))
                    .col(string(EligibilityConditions::LabelEn))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EligibilityProfessions::Table)
                    .col(string(EligibilityProfessions::Code).primary_key())
                    .col(string(EligibilityProfessions::LabelFr))
                    .col(string(EligibilityProfessions::LabelEn))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EligibilityRules::Table)
                    .col(pk_auto(EligibilityRules::Id))
                    .col(string_uniq(EligibilityRules::Code))
                    .col(integer_null(EligibilityRules::MinAge))
                    .col(string_null(EligibilityRules::Profession))
                    .col(boolean(EligibilityRules::RequiresCondition))
                    .col(date(EligibilityRules::EffectiveFrom))
                    .col(integer(EligibilityRules::Priority))
                    .col(string(EligibilityRules::ReasonFr))
                    .col(string(EligibilityRules::ReasonEn))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EligibilityRules::Table, EligibilityRules::Profession)
                            .to(EligibilityProfessions::Table, EligibilityProfessions::Code),
                    )
                    .to_owned(),
            )
            .await?;

        for (table, code_col, fr_col, en_col, rows) in [
            (
                EligibilityConditions::Table.into_iden(),
                EligibilityConditions::Code.into_iden(),
                EligibilityConditions::LabelFr.into_iden(),
                EligibilityConditions::LabelEn.into_iden(),
                CONDITIONS,
            ),
            (
                EligibilityProfessions::Table.into_iden(),
                EligibilityProfessions::Code.into_iden(),
                EligibilityProfessions::LabelFr.into_iden(),
                EligibilityProfessions::LabelEn.into_iden(),
                PROFESSIONS,
            ),
        ] {
            let mut insert = Query::insert();
            insert.into_table(table).columns([code_col, fr_col, en_col]);
            for (code, fr, en) in rows {
                insert.values_panic([(*code).into(), (*fr).into(), (*en).into()]);
            }
            manager.exec_stmt(insert).await?;
        }

        let mut insert = Query::insert();
        insert.into_table(EligibilityRules::Table).columns([
            EligibilityRules::Code,
            EligibilityRules::MinAge,
            EligibilityRules::Profession,
            EligibilityRules::RequiresCondition,
            EligibilityRules::EffectiveFrom,
            EligibilityRules::Priority,
            EligibilityRules::ReasonFr,
            EligibilityRules::ReasonEn,
        ]);
        for (code, min_age, profession, requires_condition, from, priority, fr, en) in RULES {
            let from = chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d").expect("valid seed date");
            insert.values_panic([
                (*code).into(),
                (*min_age).into(),
                profession.map(str::to_owned).into(),
                (*requires_condition).into(),
                from.into(),
                (*priority).into(),
                (*fr).into(),
                (*en).into(),
            ]);
        }
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EligibilityRules::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(EligibilityProfessions::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(EligibilityConditions::Table).to_owned()).await
    }
}
