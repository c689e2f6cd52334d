//! Every service as a process of its own, configured by environment like
//! a container: this binary re-executes itself as `rush serve <service>`,
//! so the services run the same release build as the generator. A service
//! can be killed, stopped, started again or paused mid-run (faults).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use creneau_kit::attestation::Signer;
use tokio::process::{Child, Command};

/// How to start one service: what a container spec would say.
struct Spec {
    env: Vec<(&'static str, String)>,
    log: PathBuf,
}

pub struct Services {
    exe: PathBuf,
    specs: HashMap<&'static str, Spec>,
    children: tokio::sync::Mutex<HashMap<&'static str, Child>>,
    /// Process ids, read by the CPU meter while faults change them.
    pids: Mutex<HashMap<&'static str, u32>>,
    ports: HashMap<&'static str, u16>,
    pub gateway: String,
    pub centre_directory: String,
    pub slot_inventory: String,
    pub maildir: PathBuf,
}

/// The waiting room as the rush runs it: every citizen comes from this
/// machine's address (no per-address limit), and the proof of work stays
/// light, since one generator solves it for a whole crowd.
fn room_env() -> Vec<(&'static str, String)> {
    vec![
        ("CRENEAU__QUEUE__ENABLED", "true".into()),
        ("CRENEAU__QUEUE__KEYS", creneau_gateway::queue::keys::Keyring::generate_spec("rush")),
        ("CRENEAU__QUEUE__JOINS_PER_IP_PER_MINUTE", "0".into()),
        ("CRENEAU__QUEUE__DIFFICULTY_FLOOR", "8".into()),
        ("CRENEAU__QUEUE__DIFFICULTY_CEILING", "10".into()),
        ("CRENEAU__QUEUE__COMFORTABLE_JOINS_PER_S", "2000".into()),
        ("CRENEAU__QUEUE__RATE_FLOOR", "20".into()),
        ("CRENEAU__TELEMETRY__LOG_FILTER", "warn,creneau_gateway::queue=info".into()),
    ]
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

impl Services {
    /// Starts the five services on `database` (already migrated), logs to
    /// `logs/`, and waits until every one of them is ready.
    pub async fn start(database: &str, out: &Path, queue: bool) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let logs = out.join("logs");
        std::fs::create_dir_all(&logs)?;
        let maildir = out.join("maildir");
        let signing = Signer::generate_spec("rush");
        let public = Signer::parse(&signing)?.public_spec();
        let mut ports = HashMap::new();
        for service in creneau::SERVICES {
            ports.insert(service, free_port()?);
        }
        let url = |service: &str| format!("http://127.0.0.1:{}", ports[service]);
        let mut specs = HashMap::new();
        for service in creneau::SERVICES {
            let mut env: Vec<(&str, String)> = vec![
                ("CRENEAU__SERVER__HOST", "127.0.0.1".into()),
                ("CRENEAU__SERVER__PORT", ports[service].to_string()),
                ("CRENEAU__TELEMETRY__LOG_FILTER", "warn".into()),
            ];
            if service != "gateway" || queue {
                env.push(("CRENEAU__DATABASE__URL", database.into()));
            }
            match service {
                "notification" => {
                    env.push(("CRENEAU__NOTIFICATION__MAILDIR", maildir.display().to_string()));
                    env.push(("CRENEAU__NOTIFICATION__CENTRE_DIRECTORY_URL", url("centre-directory")));
                }
                "slot-inventory" => {
                    env.push(("CRENEAU__SLOT_INVENTORY__VERIFICATION_KEYS", public.clone()));
                    env.push(("CRENEAU__SLOT_INVENTORY__NOTIFICATION_URL", url("notification")));
                }
                "eligibility" => env.push(("CRENEAU__ELIGIBILITY__SIGNING_KEY", signing.clone())),
                "centre-directory" => {
                    env.push(("CRENEAU__CENTRE_DIRECTORY__SLOT_INVENTORY_URL", url("slot-inventory")))
                }
                _ => {
                    if queue {
                        env.extend(room_env());
                    }
                    env.push(("CRENEAU__GATEWAY__ELIGIBILITY_URL", url("eligibility")));
                    env.push(("CRENEAU__GATEWAY__CENTRE_DIRECTORY_URL", url("centre-directory")));
                    env.push(("CRENEAU__GATEWAY__SLOT_INVENTORY_URL", url("slot-inventory")));
                }
            }
            specs.insert(service, Spec { env, log: logs.join(format!("{service}.log")) });
        }
        let services = Self {
            exe,
            specs,
            children: tokio::sync::Mutex::new(HashMap::new()),
            pids: Mutex::new(HashMap::new()),
            gateway: url("gateway"),
            centre_directory: url("centre-directory"),
            slot_inventory: url("slot-inventory"),
            maildir,
            ports,
        };
        for service in creneau::SERVICES {
            services.launch(service).await?;
        }
        services.wait_ready().await?;
        Ok(services)
    }

    fn spec(&self, service: &str) -> anyhow::Result<(&'static str, &Spec)> {
        self.specs
            .iter()
            .find(|(name, _)| **name == service)
            .map(|(name, spec)| (*name, spec))
            .with_context(|| format!("no service {service:?} (one of {:?})", creneau::SERVICES))
    }

    /// Starts `service`'s process, appending to its log.
    pub async fn launch(&self, service: &str) -> anyhow::Result<()> {
        let (name, spec) = self.spec(service)?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&spec.log)?;
        let child = Command::new(&self.exe)
            .args(["serve", name])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(spec.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        if let Some(pid) = child.id() {
            self.pids.lock().expect("pids").insert(name, pid);
        }
        self.children.lock().await.insert(name, child);
        Ok(())
    }

    /// SIGKILL: the process dies at once, as in a crash or an OOM kill.
    pub async fn kill(&self, service: &str) -> anyhow::Result<()> {
        let (name, _) = self.spec(service)?;
        let mut child = self.children.lock().await.remove(name).with_context(|| format!("{name} is not running"))?;
        child.kill().await.with_context(|| format!("killing {name}"))?;
        self.pids.lock().expect("pids").remove(name);
        Ok(())
    }

    /// SIGTERM, then waits for the drain: a pod being replaced.
    pub async fn terminate(&self, service: &str) -> anyhow::Result<()> {
        let (name, _) = self.spec(service)?;
        let child = self.children.lock().await.remove(name).with_context(|| format!("{name} is not running"))?;
        self.pids.lock().expect("pids").remove(name);
        stop(name, child).await
    }

    /// SIGSTOP or SIGCONT: a process frozen (a stalled node, a long GC
    /// pause) with its connections and transactions left open.
    pub async fn signal(&self, service: &str, signal: &str) -> anyhow::Result<()> {
        let (name, _) = self.spec(service)?;
        let pid = self.pids.lock().expect("pids").get(name).copied().with_context(|| format!("{name} has no pid"))?;
        let status = std::process::Command::new("kill").args([format!("-{signal}"), pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {name} failed");
        Ok(())
    }

    pub fn port(&self, service: &str) -> Option<u16> {
        self.ports.iter().find(|(name, _)| **name == service).map(|(_, port)| *port)
    }

    /// Until every service answers: the gRPC ones SERVING (database
    /// reachable, migrations applied), the gateway on /healthz.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let mut ready = true;
            for service in creneau::SERVICES {
                let probe = super::probes::Probe::of(self, service);
                ready &= probe.ready().await;
            }
            if ready {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the services did not become ready within 30 s (see the logs directory)");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Process ids by service, for CPU accounting.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.pids.lock().expect("pids").iter().map(|(name, pid)| (*name, *pid)).collect()
    }

    /// SIGTERM, then wait: the services drain like pods being replaced.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut children = self.children.into_inner();
        for service in creneau::SERVICES.iter().rev() {
            if let Some(child) = children.remove(service) {
                stop(service, child).await?;
            }
        }
        Ok(())
    }
}

async fn stop(service: &str, mut child: Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    }
    match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => bail!("{service} exited with {status}"),
        Ok(Err(error)) => bail!("waiting for {service}: {error}"),
        Err(_) => bail!("{service} did not stop within 30 s of SIGTERM"),
    }
}
