//! The eligibility tables: versioned rule sets, their rules, the audit
//! trail, and the condition and profession catalogues.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::domain::{Catalogues, Rule};

pub mod entities {
    macro_rules! entity {
        ($module:ident, $table:literal, { $($(#[$attr:meta])* $field:ident : $ty:ty),+ $(,)? }) => {
            pub mod $module {
                use sea_orm::entity::prelude::*;

                #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
                #[sea_orm(table_name = $table)]
                pub struct Model {
                    $($(#[$attr])* pub $field: $ty),+
                }

                #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
                pub enum Relation {}

                impl ActiveModelBehavior for ActiveModel {}
            }
        };
    }

    entity!(rule_set, "rule_sets", {
        #[sea_orm(primary_key, auto_increment = false)] id: String,
        name: String,
        status: String,
        created_at: DateTimeUtc,
        created_by: String,
        published_at: Option<DateTimeUtc>,
        published_by: Option<String>,
        effective_at: Option<DateTimeUtc>,
    });

    entity!(rule, "rule_set_rules", {
        #[sea_orm(primary_key, auto_increment = false)] rule_set_id: String,
        #[sea_orm(primary_key, auto_increment = false)] code: String,
        min_age: Option<i32>,
        max_age: Option<i32>,
        profession: Option<String>,
        requires_condition: bool,
        dose: i32,
        min_days_since_last_dose: Option<i32>,
        effective_from: Date,
        priority: i32,
        reason_fr: String,
        reason_en: String,
    });

    entity!(audit, "eligibility_audit", {
        #[sea_orm(primary_key)] id: i64,
        at: DateTimeUtc,
        actor: String,
        action: String,
        rule_set_id: String,
        detail: String,
    });

    entity!(condition, "eligibility_conditions", {
        #[sea_orm(primary_key, auto_increment = false)] code: String,
        label_fr: String,
        label_en: String,
    });

    entity!(profession, "eligibility_professions", {
        #[sea_orm(primary_key, auto_increment = false)] code: String,
        label_fr: String,
        label_en: String,
    });
}

use entities::{audit, condition, profession, rule, rule_set};

pub const DRAFT: &str = "draft";
pub const PUBLISHED: &str = "published";

fn to_rule(r: rule::Model) -> Rule {
    let days = |n: Option<i32>| n.and_then(|v| u32::try_from(v).ok());
    Rule {
        code: r.code,
        min_age: days(r.min_age),
        max_age: days(r.max_age),
        profession: r.profession,
        requires_condition: r.requires_condition,
        dose: u32::try_from(r.dose).unwrap_or(1),
        min_days_since_last_dose: days(r.min_days_since_last_dose),
        effective_from: r.effective_from,
        priority: r.priority,
        reason_fr: r.reason_fr,
        reason_en: r.reason_en,
    }
}

pub async fn rules_of(db: &DatabaseConnection, set_id: &str) -> Result<Vec<Rule>, DbErr> {
    let rows = rule::Entity::find()
        .filter(rule::Column::RuleSetId.eq(set_id))
        .order_by_asc(rule::Column::Priority)
        .order_by_asc(rule::Column::Code)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(to_rule).collect())
}

/// Every published set with its rules, in effective order.
pub async fn published(db: &DatabaseConnection) -> Result<Vec<(DateTime<Utc>, Vec<Rule>)>, DbErr> {
    let sets = rule_set::Entity::find()
        .filter(rule_set::Column::Status.eq(PUBLISHED))
        .order_by_asc(rule_set::Column::EffectiveAt)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let at = set.effective_at.unwrap_or(set.created_at);
        out.push((at, rules_of(db, &set.id).await?));
    }
    Ok(out)
}

#[derive(FromQueryResult)]
struct Version {
    version: Option<DateTime<Utc>>,
}

/// Changes whenever a set is published: replicas poll it to know when to
/// reload.
pub async fn version(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>, DbErr> {
    let row = rule_set::Entity::find()
        .select_only()
        .column_as(rule_set::Column::PublishedAt.max(), "version")
        .into_model::<Version>()
        .one(db)
        .await?;
    Ok(row.and_then(|v| v.version))
}

pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    rules: &[Rule],
    actor: &str,
    now: DateTime<Utc>,
) -> Result<String, DbErr> {
    let id = format!("rs-{}", uuid::Uuid::now_v7().simple());
    let txn = db.begin().await?;
    rule_set::Entity::insert(rule_set::ActiveModel {
        id: Set(id.clone()),
        name: Set(name.to_owned()),
        status: Set(DRAFT.into()),
        created_at: Set(now),
        created_by: Set(actor.to_owned()),
        published_at: Set(None),
        published_by: Set(None),
        effective_at: Set(None),
    })
    .exec_without_returning(&txn)
    .await?;
    for r in rules {
        let signed = |v: Option<u32>| v.map(|n| n.min(i32::MAX as u32) as i32);
        rule::Entity::insert(rule::ActiveModel {
            rule_set_id: Set(id.clone()),
            code: Set(r.code.clone()),
            min_age: Set(signed(r.min_age)),
            max_age: Set(signed(r.max_age)),
            profession: Set(r.profession.clone()),
            requires_condition: Set(r.requires_condition),
            dose: Set(r.dose as i32),
            min_days_since_last_dose: Set(signed(r.min_days_since_last_dose)),
            effective_from: Set(r.effective_from),
            priority: Set(r.priority),
            reason_fr: Set(r.reason_fr.clone()),
            reason_en: Set(r.reason_en.clone()),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    record(&txn, actor, "create", &id, &format!("{} rule(s), {name:?}", rules.len()), now).await?;
    txn.commit().await?;
    Ok(id)
}

pub async fn find(db: &DatabaseConnection, id: &str) -> Result<Option<rule_set::Model>, DbErr> {
    rule_set::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Publishes a draft; false when it is not a draft (any more).
pub async fn publish(
    db: &DatabaseConnection,
    id: &str,
    effective_at: DateTime<Utc>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let changed = rule_set::Entity::update_many()
        .col_expr(rule_set::Column::Status, Expr::value(PUBLISHED))
        .col_expr(rule_set::Column::PublishedAt, Expr::value(now))
        .col_expr(rule_set::Column::PublishedBy, Expr::value(actor))
        .col_expr(rule_set::Column::EffectiveAt, Expr::value(effective_at))
        .filter(rule_set::Column::Id.eq(id))
        .filter(rule_set::Column::Status.eq(DRAFT))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 1 {
        record(&txn, actor, "publish", id, &format!("effective {}", effective_at.to_rfc3339()), now).await?;
    }
    txn.commit().await?;
    Ok(changed.rows_affected == 1)
}

async fn record(
    txn: &impl sea_orm::ConnectionTrait,
    actor: &str,
    action: &str,
    set: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    audit::Entity::insert(audit::ActiveModel {
        at: Set(now),
        actor: Set(actor.to_owned()),
        action: Set(action.to_owned()),
        rule_set_id: Set(set.to_owned()),
        detail: Set(detail.to_owned()),
        ..Default::default()
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

pub async fn all_sets(db: &DatabaseConnection) -> Result<Vec<rule_set::Model>, DbErr> {
    rule_set::Entity::find().order_by_desc(rule_set::Column::CreatedAt).all(db).await
}

pub async fn audit_trail(db: &DatabaseConnection) -> Result<Vec<audit::Model>, DbErr> {
    audit::Entity::find().order_by_asc(audit::Column::Id).all(db).await
}

pub async fn load_catalogues(db: &DatabaseConnection) -> Result<Catalogues, DbErr> {
    let conditions = condition::Entity::find().all(db).await?;
    let professions = profession::Entity::find().all(db).await?;
    Ok(Catalogues {
        conditions: conditions.into_iter().map(|c| c.code).collect(),
        professions: professions.into_iter().map(|p| p.code).collect(),
    })
}
