//! The rush, on PostgreSQL: the concurrency scenarios of
//! `creneau_slot_inventory::scenarios`, 1,000 concurrent clients each over
//! gRPC, each followed by SQL checks of every invariant. Each prints what
//! it did: attempts, conflicts, bookings.

use creneau_kit::testing::Backend;
use creneau_slot_inventory::scenarios;

use crate::helpers::{spawn_app, spawn_short_lived};

/// One scenario at a time: each is a rush of its own, not a share of one.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! on_postgres {
    ($spawn:path; $($scenario:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $scenario() {
                let _turn = super::ONE_AT_A_TIME.lock().await;
                if let Some(app) = $spawn(Backend::Postgres).await {
                    scenarios::$scenario(&app).await.unwrap();
                }
            }
        )+
    };
}

mod postgres {
    use super::*;

    on_postgres!(spawn_app;
        uniform_demand,
        everyone_wants_the_earliest_slot,
        cancellations_and_reschedules_interleaved,
        the_same_bookings_changed_at_once,
        retries_with_the_same_key,
    );
    on_postgres!(spawn_short_lived; holds_expire_mid_run);
}
