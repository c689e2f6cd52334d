//! centre-directory in a process of its own, so that its resident memory
//! can be read apart from the other services and from the load generator,
//! which share the bench's process. The rest of the platform stays in
//! process: only the directory's memory is asked about.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use creneau::Platform;
use tokio::process::{Child, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICE: &str = "centre-directory";
const BINARY: &str = "creneau-centre-directory";

/// What the bench's child process does instead of benchmarking: run one
/// service, configured from the environment, until SIGTERM. The bench's
/// own runtime stays idle beside it, a few threads' worth of memory in
/// the figure.
pub fn serve(service: String) -> anyhow::Result<()> {
    // The service builds a runtime of its own, which cannot be started on
    // a thread that drives the bench's.
    let code = std::thread::spawn(move || creneau::serve(&service))
        .join()
        .map_err(|_| anyhow::anyhow!("the service panicked"))?;
    anyhow::ensure!(code == ExitCode::SUCCESS, "the service stopped with {code:?}");
    Ok(())
}

pub struct DirectoryProcess {
    child: Child,
    log: PathBuf,
}

impl DirectoryProcess {
    /// Stops the platform's centre-directory and starts it again as a
    /// process on the same port, where its callers already look for it.
    pub async fn replace(platform: &mut Platform, database: &str, log: &Path) -> anyhow::Result<Self> {
        let port = platform.stop_service(SERVICE).await?;
        let exe = std::env::current_exe().context("finding this executable")?;
        // The service's own executable, as its image runs it, when it was
        // built beside the bench; else the bench's, running the service.
        let own = exe.with_file_name(BINARY);
        let (program, args) = if own.is_file() {
            (own, vec![])
        } else {
            println!("{BINARY} not built beside the bench: the directory runs in the bench's own executable");
            (exe, vec!["search", "--serve", SERVICE])
        };
        let output = std::fs::File::create(log)?;
        let child = Command::new(program)
            .args(args)
            .env_clear()
            // The allocator's own settings pass, for trying them.
            .envs(std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("MIMALLOC_")))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CRENEAU__SERVER__HOST", &platform.config().host)
            .env("CRENEAU__SERVER__PORT", port.to_string())
            .env("CRENEAU__DATABASE__URL", database)
            .env("CRENEAU__CENTRE_DIRECTORY__SLOT_INVENTORY_URL", platform.slot_inventory_url())
            .env("CRENEAU__TELEMETRY__LOG_FILTER", "warn")
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .context("starting centre-directory")?;
        let mut process = Self { child, log: log.to_owned() };
        process.wait_ready(&platform.grpc_url(SERVICE)).await?;
        Ok(process)
    }

    async fn wait_ready(&mut self, url: &str) -> anyhow::Result<()> {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("centre-directory exited with {status}: {}", self.log_tail());
            }
            if serving(url).await {
                return Ok(());
            }
            if began.elapsed() > Duration::from_secs(30) {
                bail!("centre-directory did not become ready within 30 s: {}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self.child.id().context("centre-directory has exited")?;
        Memory::of(&format!("/proc/{pid}/status"))
    }

    /// SIGTERM, then waits for the drain.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("centre-directory did not stop within 30 s of SIGTERM")??;
        anyhow::ensure!(status.success(), "centre-directory exited with {status}: {}", self.log_tail());
        Ok(())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Whether the gRPC health service says SERVING: the database reachable,
/// the migrations applied.
async fn serving(url: &str) -> bool {
    let ask = async {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned()).ok()?.connect().await.ok()?;
        let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.ok()?;
        Some(answer.into_inner().status == ServingStatus::Serving as i32)
    };
    tokio::time::timeout(Duration::from_secs(2), ask).await.ok().flatten().unwrap_or(false)
}

/// A process's resident memory, from its `/proc/…/status`.
pub struct Memory {
    resident_kib: u64,
    peak_kib: u64,
    /// Of the resident memory, the heap and stacks; the rest is the
    /// executable's pages and shared libraries.
    anonymous_kib: u64,
}

impl Memory {
    pub fn of(status_file: &str) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(status_file).with_context(|| format!("reading {status_file}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
                .with_context(|| format!("no {name} in {status_file}"))
        };
        Ok(Self { resident_kib: field("VmRSS:")?, peak_kib: field("VmHWM:")?, anonymous_kib: field("RssAnon:")? })
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        write!(
            f,
            "{:.1} MiB resident (VmRSS; {:.1} MiB of it anonymous), peak {:.1} MiB (VmHWM)",
            mib(self.resident_kib),
            mib(self.anonymous_kib),
            mib(self.peak_kib)
        )
    }
}
