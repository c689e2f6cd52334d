//! Rules become versioned sets: drafted, validated, published with an
//! effective time, kept as history, every change audited. The rules seeded
//! by the first migration become the first published set.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RuleSets {
    Table,
    Id,
    Name,
    Status,
    CreatedAt,
    CreatedBy,
    PublishedAt,
    PublishedBy,
    EffectiveAt,
}

#[derive(DeriveIden)]
enum RuleSetRules {
    Table,
    RuleSetId,
    Code,
    MinAge,
    MaxAge,
    Profession,
    RequiresCondition,
    Dose,
    MinDaysSinceLastDose,
    EffectiveFrom,
    Priority,
    ReasonFr,
    ReasonEn,
}

#[derive(DeriveIden)]
enum EligibilityAudit {
    Table,
    Id,
    At,
    Actor,
    Action,
    RuleSetId,
    Detail,
}

const INITIAL: &str = "initial-2021";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RuleSets::Table)
                    .col(string(RuleSets::Id).primary_key())
                    .col(string(RuleSets::Name))
                    .col(string(RuleSets::Status))
                    .col(timestamp_with_time_zone(RuleSets::CreatedAt))
                    .col(string(RuleSets::CreatedBy))
                    .col(timestamp_with_time_zone_null(RuleSets::PublishedAt))
                    .col(string_null(RuleSets::PublishedBy))
                    .col(timestamp_with_time_zone_null(RuleSets::EffectiveAt))
                    .check(Expr::col(RuleSets::Status).is_in(["draft", "published"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RuleSetRules::Table)
                    .col(string(RuleSetRules::RuleSetId))
                    .col(string(RuleSetRules::Code))
                    .col(integer_null(RuleSetRules::MinAge))
                    .col(integer_null(RuleSetRules::MaxAge))
                    .col(string_null(RuleSetRules::Profession))
                    .col(boolean(RuleSetRules::RequiresCondition))
                    .col(integer(RuleSetRules::Dose).default(1))
                    .col(integer_null(RuleSetRules::MinDaysSinceLastDose))
                    .col(date(RuleSetRules::EffectiveFrom))
                    .col(integer(RuleSetRules::Priority))
                    .col(string(RuleSetRules::ReasonFr))
                    .col(string(RuleSetRules::ReasonEn))
                    .primary_key(Index::create().col(RuleSetRules::RuleSetId).col(RuleSetRules::Code))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RuleSetRules::Table, RuleSetRules::RuleSetId)
                            .to(RuleSets::Table, RuleSets::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EligibilityAudit::Table)
                    .col(big_pk_auto(EligibilityAudit::Id))
                    .col(timestamp_with_time_zone(EligibilityAudit::At))
                    .col(string(EligibilityAudit::Actor))
                    .col(string(EligibilityAudit::Action))
                    .col(string(EligibilityAudit::RuleSetId))
                    .col(text(EligibilityAudit::Detail))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO rule_sets (id, name, status, created_at, created_by, published_at, published_by, effective_at) \
             VALUES ('{INITIAL}', 'Campagne 2021 : premières phases', 'published', '2021-01-14 00:00:00+00:00', \
             'migration', '2021-01-14 00:00:00+00:00', 'migration', '2021-01-14 00:00:00+00:00')"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO rule_set_rules (rule_set_id, code, min_age, max_age, profession, requires_condition, dose, \
             min_days_since_last_dose, effective_from, priority, reason_fr, reason_en) \
             SELECT '{INITIAL}', code, min_age, NULL, profession, requires_condition, 1, NULL, effective_from, priority, \
             reason_fr, reason_en FROM eligibility_rules"
        ))
        .await?;
        // The booster phase opened to every adult three months after the
        // last dose.
        db.execute_unprepared(&format!(
            "INSERT INTO rule_set_rules (rule_set_id, code, min_age, max_age, profession, requires_condition, dose, \
             min_days_since_last_dose, effective_from, priority, reason_fr, reason_en) VALUES ('{INITIAL}', \
             'booster_adults', 18, NULL, NULL, {no}, 3, 90, '2021-09-01', 40, \
             'Vous êtes majeur et votre dernière dose date de plus de trois mois.', \
             'You are an adult and your last dose was over three months ago.')",
            no = if manager.get_database_backend() == sea_orm::DbBackend::Postgres { "false" } else { "0" }
        ))
        .await?;
        manager.drop_table(Table::drop().table(Alias::new("eligibility_rules")).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("eligibility_rules"))
                    .col(pk_auto(Alias::new("id")))
                    .col(string_uniq(Alias::new("code")))
                    .col(integer_null(Alias::new("min_age")))
                    .col(string_null(Alias::new("profession")))
                    .col(boolean(Alias::new("requires_condition")))
                    .col(date(Alias::new("effective_from")))
                    .col(integer(Alias::new("priority")))
                    .col(string(Alias::new("reason_fr")))
                    .col(string(Alias::new("reason_en")))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO eligibility_rules (code, min_age, profession, requires_condition, effective_from, priority, \
                 reason_fr, reason_en) SELECT code, min_age, profession, requires_condition, effective_from, priority, \
                 reason_fr, reason_en FROM rule_set_rules WHERE rule_set_id = '{INITIAL}'"
            ))
            .await?;
        for table in ["eligibility_audit", "rule_set_rules", "rule_sets"] {
            manager.drop_table(Table::drop().table(Alias::new(table)).to_owned()).await?;
        }
        Ok(())
    }
}
