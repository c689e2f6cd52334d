//! Every service as a process of its own, configured by environment like
//! a container: this binary re-executes itself as `rush serve <service>`,
//! so the services run the same release build as the generator.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use creneau_kit::attestation::Signer;
use tokio::process::{Child, Command};

pub struct Services {
    children: Vec<(&'static str, Child)>,
    pub gateway: String,
    pub centre_directory: String,
    pub slot_inventory: String,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

impl Services {
    /// Starts the five services on `database` (already migrated), logs to
    /// `logs/`, and waits until the gateway reports every backend ready.
    pub async fn start(database: &str, out: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let logs = out.join("logs");
        std::fs::create_dir_all(&logs)?;
        let signing = Signer::generate_spec("rush");
        let public = Signer::parse(&signing)?.public_spec();
        let mut ports = std::collections::HashMap::new();
        for service in creneau::SERVICES {
            ports.insert(service, free_port()?);
        }
        let url = |service: &str| format!("http://127.0.0.1:{}", ports[service]);
        let mut children = Vec::new();
        for service in creneau::SERVICES {
            let mut env: Vec<(&str, String)> = vec![
                ("CRENEAU__SERVER__HOST", "127.0.0.1".into()),
                ("CRENEAU__SERVER__PORT", ports[service].to_string()),
                ("CRENEAU__TELEMETRY__LOG_FILTER", "warn".into()),
            ];
            if service != "gateway" {
                env.push(("CRENEAU__DATABASE__URL", database.into()));
            }
            match service {
                "notification" => {
                    env.push(("CRENEAU__NOTIFICATION__MAILDIR", out.join("maildir").display().to_string()));
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
                    env.push(("CRENEAU__GATEWAY__ELIGIBILITY_URL", url("eligibility")));
                    env.push(("CRENEAU__GATEWAY__CENTRE_DIRECTORY_URL", url("centre-directory")));
                    env.push(("CRENEAU__GATEWAY__SLOT_INVENTORY_URL", url("slot-inventory")));
                }
            }
            let log = std::fs::File::create(logs.join(format!("{service}.log")))?;
            let child = Command::new(&exe)
                .args(["serve", service])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(env)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {service}"))?;
            children.push((service, child));
        }
        let services = Self {
            children,
            gateway: url("gateway"),
            centre_directory: url("centre-directory"),
            slot_inventory: url("slot-inventory"),
        };
        services.wait_ready(&ports["notification"]).await?;
        Ok(services)
    }

    async fn wait_ready(&self, notification: &u16) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let gateway = http.get(format!("{}/readyz", self.gateway)).send().await;
            let notifying = tokio::net::TcpStream::connect(("127.0.0.1", *notification)).await.is_ok();
            if gateway.is_ok_and(|r| r.status().is_success()) && notifying {
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
        self.children.iter().filter_map(|(name, child)| Some((*name, child.id()?))).collect()
    }

    /// SIGTERM, then wait: the services drain like pods being replaced.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for (_, child) in self.children.iter().rev() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
        }
        for (service, child) in self.children.iter_mut().rev() {
            match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => bail!("{service} exited with {status}"),
                Ok(Err(error)) => bail!("waiting for {service}: {error}"),
                Err(_) => bail!("{service} did not stop within 30 s of SIGTERM"),
            }
        }
        Ok(())
    }
}
