//! The rush harness measuring a platform it did not start (`--target`):
//! a small crowd, then its report read back.

use clap::Parser;
use creneau_integration_tests::rush;
use creneau_kit::testing::Backend;
use serde_json::Value;

use crate::helpers::spawn_platform;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    options: rush::Options,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_rush_against_a_running_platform_reports_and_checks() {
    let Some(app) = spawn_platform(Backend::Postgres).await else { return };
    let out = tempfile::tempdir().unwrap();
    let grpc = |service: &str| app.platform.grpc_url(service);
    let args = [
        "rush",
        "--preset=smoke",
        "--citizens=300",
        "--centres=10",
        "--places=150",
        "--opens-in=1",
        "--arrival-window=3",
        "--patience=8",
        "--no-baseline",
    ]
    .map(String::from)
    .into_iter()
    .chain([
        format!("--target={}", app.platform.gateway_url()),
        format!("--centre-directory={}", grpc("centre-directory")),
        format!("--slot-inventory={}", grpc("slot-inventory")),
        format!("--database-url={}", app.database_url()),
        format!("--out={}", out.path().display()),
    ]);
    // The smoke preset fails the run on any 5xx, timeout or broken invariant.
    rush::run(Cli::parse_from(args).options).await.expect("the rush passes");

    let report: Value = serde_json::from_slice(&std::fs::read(out.path().join("rush-smoke.json")).unwrap()).unwrap();
    let booked = report["selling"]["bookings"].as_u64().unwrap();
    assert!(booked > 0 && booked <= 150, "{booked} bookings for 150 places");
    let citizens: u64 = report["citizens"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(citizens, 300, "every citizen's morning ends and is counted");
    let checks = report["invariants"].as_array().unwrap();
    assert_eq!(checks.len(), 7);
    assert!(checks.iter().all(|c| c["violations"] == 0), "{checks:?}");
    assert_eq!(report["ledger"]["acknowledged_but_missing"], 0);
    let booked_in_db =
        app.scalar("SELECT COUNT(*) FROM bookings WHERE status = 'confirmed' AND reference IS NOT NULL").await as u64;
    let cancelled = report["selling"]["cancelled"].as_u64().unwrap();
    assert!(booked_in_db >= booked - cancelled, "{booked_in_db} in the database, {booked} acknowledged");
    let series = report["series"].as_array().unwrap();
    assert!(series.iter().any(|s| s["t"].as_i64() < Some(0)), "seconds before the opening are in the series");
    let chart = std::fs::read_to_string(out.path().join("rush-smoke.svg")).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("bookings/s"), "an SVG chart with its legend");
}
