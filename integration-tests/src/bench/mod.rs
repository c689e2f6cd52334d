//! Benchmark harnesses.

pub mod booking;
pub mod freshness;
pub mod search;
pub mod soak;
pub mod stats;

/// Runs `bench` on a database created for it on the PostgreSQL server
/// `postgres` (given its URL), and drops the database afterwards.
pub(crate) async fn on_scratch_database<Fut>(postgres: &str, bench: impl FnOnce(String) -> Fut) -> anyhow::Result<()>
where
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use anyhow::Context;
    use sea_orm::{ConnectionTrait, Database};
    let name = format!("creneau_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(format!("{postgres}/postgres")).await.context("connecting to PostgreSQL")?;
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
    let result = bench(format!("{postgres}/{name}")).await;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
    result
}
