//! `rush`: replays a launch-day morning against Créneau and reports how it
//! held. `rush serve <service>` is how it starts each service process.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: creneau_kit::Allocator = creneau_kit::ALLOCATOR;

#[derive(Parser)]
#[command(name = "rush", about = "Launch day against Créneau: figures, a chart, the invariants checked")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: creneau_integration_tests::rush::Options,
}

#[derive(Subcommand)]
enum Command {
    /// Run one service (the rush's own service processes).
    #[command(hide = true)]
    Serve { service: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Serve { service }) = cli.command {
        return creneau::serve(&service);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    match runtime.block_on(creneau_integration_tests::rush::run(cli.options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rush: {error:#}");
            ExitCode::FAILURE
        }
    }
}
