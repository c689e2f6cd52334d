//! `creneau up` runs everything locally; `creneau serve <service>` runs one
//! service as its own binary would; `creneau migrate` applies migrations.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use creneau::{Databases, Platform, PlatformConfig, demo};
use creneau_kit::TelemetrySettings;
use creneau_kit::attestation::Signer;
use creneau_kit::settings::LogFormat;

#[global_allocator]
static ALLOCATOR: creneau_kit::Allocator = creneau_kit::ALLOCATOR;

#[derive(Parser)]
#[command(name = "creneau", version, about = "Créneau: vaccination appointment booking that holds under a rush")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform in this process, with demo data.
    Up {
        /// Where the embedded SQLite databases, signing key and maildir live.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Gateway HTTP port.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// A PostgreSQL URL: every service then uses this database instead of SQLite.
        #[arg(long, env = "CRENEAU__DATABASE__URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Do not publish the demo centres and slots.
        #[arg(long)]
        no_demo: bool,
    },
    /// Run one service, configured like its own binary (CRENEAU__… variables).
    Serve {
        #[arg(value_parser = ["gateway", "eligibility", "centre-directory", "slot-inventory", "notification"])]
        service: String,
    },
    /// Import centres from France's open-data file of vaccination sites
    /// (semicolon-separated) into a running centre directory.
    ImportCentres {
        /// The CSV file.
        file: PathBuf,
        /// The centre directory's gRPC address.
        #[arg(long, default_value = "http://127.0.0.1:50052")]
        centre_directory: String,
        /// Vaccines the imported sites offer (the file does not say).
        #[arg(long, value_delimiter = ',', default_value = "pfizer,moderna")]
        vaccines: Vec<String>,
        /// Import nothing when any row is rejected.
        #[arg(long)]
        all_or_nothing: bool,
    },
    /// Apply (or roll back) database migrations, then exit.
    Migrate {
        /// Only this service's migrations (default: all).
        #[arg(long, value_parser = ["eligibility", "centre-directory", "slot-inventory", "notification", "gateway"])]
        service: Option<String>,
        #[arg(long, env = "CRENEAU__DATABASE__URL", hide_env_values = true, conflicts_with = "data_dir")]
        database_url: Option<String>,
        /// The SQLite layout of `creneau up`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Roll every migration back instead.
        #[arg(long)]
        down: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { service } => creneau::serve(&service),
        Command::Up { data_dir, host, port, database_url, no_demo } => {
            block_on(up(data_dir, host, port, database_url, !no_demo))
        }
        Command::Migrate { service, database_url, data_dir, down } => {
            block_on(migrate(service, database_url, data_dir, down))
        }
        Command::ImportCentres { file, centre_directory, vaccines, all_or_nothing } => {
            block_on(import_centres(file, centre_directory, vaccines, all_or_nothing))
        }
    }
}

fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let telemetry = TelemetrySettings {
        log_filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        log_format: LogFormat::Pretty,
        otlp_endpoint: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let _telemetry = match creneau_kit::telemetry::init("creneau", &telemetry) {
            Ok(t) => t,
            Err(error) => {
                eprintln!("creneau: {error}");
                return ExitCode::from(64);
            }
        };
        match work.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("creneau: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The local signing key: made once, kept with the data, readable by the
/// owner only.
fn signing_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("attestation-signing.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        Signer::parse(existing.trim()).with_context(|| format!("invalid key in {}", path.display()))?;
        return Ok(existing.trim().to_owned());
    }
    let spec = Signer::generate_spec("local-1");
    std::fs::write(&path, &spec).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(spec)
}

async fn up(
    data_dir: PathBuf,
    host: String,
    port: u16,
    database_url: Option<String>,
    demo: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let databases = match database_url {
        Some(url) => Databases::Shared(url),
        None => Databases::SqliteDir(data_dir.clone()),
    };
    let mut config = PlatformConfig::new(databases, data_dir.join("maildir"));
    config.host = host;
    config.gateway_port = port;
    config.signing_key = signing_key(&data_dir)?;
    let platform = Platform::start(config).await?;
    if demo {
        let centres = demo::seed(&platform.grpc_url("centre-directory"), &platform.grpc_url("slot-inventory")).await?;
        tracing::info!(centres, "demo data published");
    }
    println!();
    println!("Créneau is running: {}", platform.gateway_url());
    println!("  try: curl '{}/api/v1/centres?postcode=57000'", platform.gateway_url());
    println!("  messages are delivered to {}", data_dir.join("maildir").join("new").display());
    println!("Press Ctrl-C to stop.");
    creneau_kit::shutdown::signal().await;
    platform.stop().await
}

async fn migrate(
    service: Option<String>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    down: bool,
) -> anyhow::Result<()> {
    let databases = match (database_url, data_dir) {
        (Some(url), _) => Databases::Shared(url),
        (None, Some(dir)) => Databases::SqliteDir(dir),
        (None, None) => anyhow::bail!("give --database-url (or CRENEAU__DATABASE__URL) or --data-dir"),
    };
    let services: Vec<&str> = match &service {
        Some(one) => vec![one.as_str()],
        None => creneau_migrations::SERVICES.to_vec(),
    };
    if let Databases::SqliteDir(dir) = &databases {
        std::fs::create_dir_all(dir)?;
    }
    for service in services {
        let db = creneau_kit::db::connect(&databases.settings_for(service).for_migrations()).await?;
        if down {
            creneau_migrations::down(service, &db).await?;
            tracing::info!(service, "migrations rolled back");
        } else {
            creneau_migrations::up(service, &db).await?;
            tracing::info!(service, "migrations applied");
        }
        db.close().await?;
    }
    Ok(())
}

async fn import_centres(file: PathBuf, url: String, vaccines: Vec<String>, all_or_nothing: bool) -> anyhow::Result<()> {
    use creneau_proto::centre_directory::v1::{ImportCentresRequest, centre_directory_client::CentreDirectoryClient};

    let csv = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut directory = CentreDirectoryClient::new(creneau_kit::client::channel(&url)?);
    let report = directory
        .import_centres(ImportCentresRequest { csv, default_vaccines: vaccines, all_or_nothing })
        .await
        .map_err(|status| anyhow::anyhow!("the centre directory refused the import: {}", status.message()))?
        .into_inner();
    println!(
        "{} created, {} updated, {} unchanged, {} rejected",
        report.created,
        report.updated,
        report.unchanged,
        report.rejected.len()
    );
    for row in &report.rejected {
        println!("  line {} (gid {}): {}", row.line, if row.gid.is_empty() { "?" } else { &row.gid }, row.reason);
    }
    Ok(())
}
