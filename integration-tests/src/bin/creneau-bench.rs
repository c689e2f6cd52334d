//! `creneau-bench`: booking throughput against pgbench, search latency
//! and freshness, and the concurrency soak.

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: creneau_kit::Allocator = creneau_kit::ALLOCATOR;

#[derive(Parser)]
#[command(name = "creneau-bench", about = "Créneau benchmarks: print figures, never pass or fail")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Booking throughput and latency: gRPC Book vs the same SQL in pgbench.
    Booking(creneau_integration_tests::bench::booking::Options),
    /// How soon search stops offering a place just taken, under a steady
    /// booking load.
    Freshness(creneau_integration_tests::bench::freshness::Options),
    /// Search latency through the gateway at thousands of centres.
    Search(creneau_integration_tests::bench::search::Options),
    /// The concurrency scenarios again and again, invariants checked after
    /// each, until a million booking attempts.
    Soak(creneau_integration_tests::bench::soak::Options),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Booking(options) => creneau_integration_tests::bench::booking::run(options).await,
        Command::Freshness(options) => creneau_integration_tests::bench::freshness::run(options).await,
        Command::Search(options) => creneau_integration_tests::bench::search::run(options).await,
        Command::Soak(options) => creneau_integration_tests::bench::soak::run(options).await,
    }
}
