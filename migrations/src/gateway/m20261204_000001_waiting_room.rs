//! The waiting room's shared state, small enough for one row per join:
//! - `queue_joins`: every ticket's place (`key`, its joining time in ms
//!   shifted left 20 bits plus 20 random bits: a global order no replica
//!   has to ask for) and its département, written by each replica once a
//!   second in one statement;
//! - `queue_room`: one row, the leader's lease and the board every replica
//!   answers statuses from;
//! - `queue_signals`: each replica's view of the platform (booking latency,
//!   calls in flight, refusals), which the leader's closed loop reads.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = [
            "CREATE TABLE queue_joins (key bigint PRIMARY KEY, department varchar(3) NOT NULL)",
            "CREATE TABLE queue_room (id smallint PRIMARY KEY, leader varchar NOT NULL, \
             lease_until_ms bigint NOT NULL, board text NOT NULL, version bigint NOT NULL)",
            "INSERT INTO queue_room (id, leader, lease_until_ms, board, version) VALUES (1, '', 0, '', 0)",
            "CREATE TABLE queue_signals (replica varchar PRIMARY KEY, reported_ms bigint NOT NULL, \
             signals text NOT NULL)",
        ];
        let sqlite = [
            "CREATE TABLE queue_joins (key bigint PRIMARY KEY, department varchar NOT NULL)",
            "CREATE TABLE queue_room (id integer PRIMARY KEY, leader varchar NOT NULL, \
             lease_until_ms bigint NOT NULL, board text NOT NULL, version bigint NOT NULL)",
            "INSERT INTO queue_room (id, leader, lease_until_ms, board, version) VALUES (1, '', 0, '', 0)",
            "CREATE TABLE queue_signals (replica varchar PRIMARY KEY, reported_ms bigint NOT NULL, \
             signals text NOT NULL)",
        ];
        crate::execute_each(manager, &postgres, &sqlite).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in ["queue_signals", "queue_room", "queue_joins"] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}")).await?;
        }
        Ok(())
    }
}
