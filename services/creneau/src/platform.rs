//! Every Créneau service in one process, each on its own port and with its
//! own database, talking gRPC to the others exactly as when deployed
//! apart. Used by `creneau up` and by the end-to-end tests.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use creneau_kit::attestation::Signer;
use creneau_kit::{DatabaseSettings, ServerSettings, TelemetrySettings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::serve::SERVICES;

/// Where each service keeps its tables.
#[derive(Debug, Clone)]
pub enum Databases {
    /// One database for all: services still touch only their own tables.
    Shared(String),
    /// One SQLite file per service in this directory: SQLite has one
    /// writer per file, so separate files let services write in parallel.
    SqliteDir(PathBuf),
}

impl Databases {
    pub fn settings_for(&self, service: &str) -> DatabaseSettings {
        match self {
            Databases::Shared(url) => DatabaseSettings::new(url.clone()),
            Databases::SqliteDir(dir) => {
                DatabaseSettings::new(creneau_kit::db::sqlite_url(&dir.join(format!("{service}.sqlite"))))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub databases: Databases,
    /// Interface every listener binds.
    pub host: String,
    /// Gateway HTTP port; 0 picks a free one.
    pub gateway_port: u16,
    pub maildir: PathBuf,
    /// `key-id:base64-seed`; its public half is given to slot-inventory.
    pub signing_key: String,
    /// How long a hold keeps its place.
    pub hold_ttl_secs: u32,
    /// Slot-inventory replicas, each on its own port. With more than one
    /// (or any spare), each runs in a runtime of its own, like a process:
    /// it can be killed as abruptly as a crashed pod, and counts its calls
    /// in a metrics registry of its own. Its callers get the list of all.
    pub slot_inventory_replicas: usize,
    /// Ports kept for slot-inventory replicas started later
    /// (`start_replica`); callers list them from the start.
    pub slot_inventory_spares: usize,
    /// The gateway's waiting room (off by default).
    pub queue: creneau_gateway::QueueSettings,
}

impl PlatformConfig {
    pub fn new(databases: Databases, maildir: PathBuf) -> Self {
        Self {
            databases,
            host: "127.0.0.1".into(),
            gateway_port: 0,
            maildir,
            signing_key: Signer::generate_spec("local"),
            hold_ttl_secs: 300,
            slot_inventory_replicas: 1,
            slot_inventory_spares: 0,
            queue: creneau_gateway::QueueSettings::default(),
        }
    }

    fn replicated(&self) -> bool {
        self.slot_inventory_replicas > 1 || self.slot_inventory_spares > 0
    }
}

struct Running {
    port: u16,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// A slot-inventory replica's place: its port, and the replica when it runs.
struct ReplicaSlot {
    port: u16,
    running: Option<Replica>,
}

/// A replica in a runtime of its own. Dropping it ends that runtime at
/// once: every task, connection and database session goes, as when a
/// process is killed.
struct Replica {
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    metrics: creneau_kit::metrics::Metrics,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub struct Platform {
    config: PlatformConfig,
    /// Chosen before anything starts: the services call each other in a
    /// cycle (notification asks the directory for centre names), so every
    /// address must be known up front.
    ports: HashMap<&'static str, u16>,
    services: HashMap<&'static str, Running>,
    /// Slot-inventory replicas when `config.replicated()`; the first one's
    /// port is also `port("slot-inventory")`.
    replicas: Vec<ReplicaSlot>,
}

/// A port free now, chosen below the range the system hands out to
/// outgoing connections (32768 and up on Linux): services start one after
/// another, and a port picked from that range can be taken meanwhile by
/// any process's connection. Never the same twice in a process, where
/// platforms may start side by side.
fn free_port(host: &str) -> anyhow::Result<u16> {
    use rand::Rng;
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = rand::rng().random_range(20_000..32_000);
        if !given.contains(&port) && std::net::TcpListener::bind((host, port)).is_ok() {
            given.push(port);
            return Ok(port);
        }
    }
    let listener = std::net::TcpListener::bind((host, 0)).with_context(|| format!("binding {host}:0"))?;
    Ok(listener.local_addr()?.port())
}

fn server(config: &PlatformConfig, port: u16) -> ServerSettings {
    ServerSettings { host: config.host.clone(), ..ServerSettings::local(port) }
}

fn url(host: &str, port: u16) -> String {
    format!("http://{host}:{port}")
}

fn spawn<F>(run: impl FnOnce(oneshot::Receiver<()>) -> F) -> (oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (stop, stopped) = oneshot::channel();
    (stop, tokio::spawn(run(stopped)))
}

impl Platform {
    /// Migrates every service's database, then starts them in dependency
    /// order: notification, slot-inventory, eligibility, centre-directory,
    /// gateway.
    pub async fn start(config: PlatformConfig) -> anyhow::Result<Self> {
        migrate_all(&config.databases).await?;
        let mut ports = HashMap::new();
        for service in SERVICES {
            let port = match service {
                "gateway" if config.gateway_port != 0 => config.gateway_port,
                _ => free_port(&config.host)?,
            };
            ports.insert(service, port);
        }
        let mut replicas = Vec::new();
        if config.replicated() {
            for i in 0..config.slot_inventory_replicas.max(1) + config.slot_inventory_spares {
                let port = if i == 0 { ports["slot-inventory"] } else { free_port(&config.host)? };
                replicas.push(ReplicaSlot { port, running: None });
            }
        }
        let mut platform = Self { config, ports, services: HashMap::new(), replicas };
        for service in SERVICES {
            if service == "slot-inventory" && platform.config.replicated() {
                for i in 0..platform.config.slot_inventory_replicas.max(1) {
                    platform.start_replica(i).await?;
                }
            } else {
                platform.start_service(service).await?;
            }
        }
        // The directory answers from memory: it serves once that is loaded.
        let directory = platform.grpc_url("centre-directory");
        creneau_kit::client::wait_until_serving(&directory, Duration::from_secs(120))
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(platform)
    }

    /// What slot-inventory's callers are given: its address, or the list of
    /// every replica's (spares included).
    pub fn slot_inventory_url(&self) -> String {
        if self.replicas.is_empty() {
            return self.grpc_url("slot-inventory");
        }
        self.replicas.iter().map(|r| url(&self.config.host, r.port)).collect::<Vec<_>>().join(",")
    }

    /// Ports of the slot-inventory replicas, spares last.
    pub fn replica_ports(&self) -> Vec<u16> {
        self.replicas.iter().map(|r| r.port).collect()
    }

    /// The metrics of replica `index` since it last started.
    pub fn replica_metrics(&self, index: usize) -> Option<creneau_kit::metrics::Metrics> {
        self.replicas.get(index)?.running.as_ref().map(|r| r.metrics.clone())
    }

    /// Starts slot-inventory replica `index` (a spare, or one stopped or
    /// killed) on its port, in a runtime of its own.
    pub async fn start_replica(&mut self, index: usize) -> anyhow::Result<()> {
        let slot = self.replicas.get(index).with_context(|| format!("no replica {index}"))?;
        anyhow::ensure!(slot.running.is_none(), "replica {index} is running");
        let settings = self.slot_inventory_settings(slot.port)?;
        let metrics = creneau_kit::metrics::Metrics::new();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("slot-inventory-{index}"))
            .enable_all()
            .build()?;
        let (built, ready) = oneshot::channel::<anyhow::Result<u16>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = runtime.spawn(creneau_kit::metrics::scope(metrics.clone(), async move {
            let app = match creneau_slot_inventory::Application::build(settings).await {
                Ok(app) => app,
                Err(error) => {
                    let _ = built.send(Err(error));
                    return Ok(());
                }
            };
            let _ = built.send(Ok(app.port()));
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
        }));
        let replica = Replica { runtime: Some(runtime), stop: Some(stop), task: Some(task), metrics };
        match ready.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error.context(format!("starting slot-inventory replica {index}"))),
            Err(_) => anyhow::bail!("slot-inventory replica {index} did not start"),
        }
        self.replicas[index].running = Some(replica);
        Ok(())
    }

    /// Kills replica `index` with no warning: in-flight calls are cut, its
    /// port refuses connections.
    pub fn kill_replica(&mut self, index: usize) -> anyhow::Result<()> {
        let replica = self.replicas.get_mut(index).and_then(|r| r.running.take());
        anyhow::ensure!(replica.is_some(), "replica {index} is not running");
        drop(replica);
        Ok(())
    }

    /// Stops replica `index` gracefully and waits for it.
    pub async fn stop_replica(&mut self, index: usize) -> anyhow::Result<()> {
        let mut replica = self
            .replicas
            .get_mut(index)
            .and_then(|r| r.running.take())
            .with_context(|| format!("replica {index} is not running"))?;
        if let Some(stop) = replica.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = replica.task.take() {
            task.await??;
        }
        Ok(())
    }

    fn slot_inventory_settings(&self, port: u16) -> anyhow::Result<creneau_slot_inventory::Settings> {
        let c = &self.config;
        let signer = Signer::parse(&c.signing_key).context("signing key")?;
        Ok(creneau_slot_inventory::Settings {
            server: server(c, port),
            database: c.databases.settings_for("slot-inventory"),
            telemetry: TelemetrySettings::default(),
            slot_inventory: creneau_slot_inventory::SlotInventorySettings {
                notification_url: Some(url(&c.host, self.port("notification"))),
                relay_interval_ms: 200,
                hold_ttl_secs: c.hold_ttl_secs,
                ..creneau_slot_inventory::SlotInventorySettings::new(signer.public_spec())
            },
        })
    }

    pub fn port(&self, service: &str) -> u16 {
        self.ports.get(service).copied().unwrap_or(0)
    }

    pub fn gateway_url(&self) -> String {
        url(&self.config.host, self.port("gateway"))
    }

    pub fn grpc_url(&self, service: &str) -> String {
        url(&self.config.host, self.port(service))
    }

    pub fn config(&self) -> &PlatformConfig {
        &self.config
    }

    /// Starts one service on its port; a service restarted after
    /// `stop_service` comes back where its callers expect it.
    pub async fn start_service(&mut self, service: &'static str) -> anyhow::Result<()> {
        let c = &self.config;
        let port = self.port(service);
        let host = c.host.clone();
        let peer = |name: &str| url(&host, self.port(name));
        let (stop, task, port) = match service {
            "notification" => {
                let settings = creneau_notification::Settings {
                    server: server(c, port),
                    database: c.databases.settings_for(service),
                    telemetry: TelemetrySettings::default(),
                    notification: creneau_notification::NotificationSettings {
                        maildir: c.maildir.display().to_string(),
                        from: "Créneau <ne-pas-repondre@creneau.invalid>".into(),
                        centre_directory_url: Some(peer("centre-directory")),
                        dispatch_interval_ms: 200,
                        max_attempts: creneau_kit::db::queue::RetryPolicy::default_max_attempts(),
                        first_retry_ms: creneau_kit::db::queue::RetryPolicy::default_first_retry_ms(),
                    },
                };
                let app = creneau_notification::Application::build(settings).await?;
                let port = app.port();
                let (stop, task) = spawn(|stopped| {
                    app.run_until(async {
                        let _ = stopped.await;
                    })
                });
                (stop, task, port)
            }
            "slot-inventory" => {
                anyhow::ensure!(!c.replicated(), "slot-inventory runs as replicas: use start_replica");
                let settings = self.slot_inventory_settings(port)?;
                let app = creneau_slot_inventory::Application::build(settings).await?;
                let port = app.port();
                let (stop, task) = spawn(|stopped| {
                    app.run_until(async {
                        let _ = stopped.await;
                    })
                });
                (stop, task, port)
            }
            "eligibility" => {
                let settings = creneau_eligibility::Settings {
                    server: server(c, port),
                    database: c.databases.settings_for(service),
                    telemetry: TelemetrySettings::default(),
                    eligibility: creneau_eligibility::EligibilitySettings {
                        signing_key: c.signing_key.clone().into(),
                        attestation_ttl_secs: 1800,
                        retired_verification_keys: String::new(),
                        rules_refresh_ms: 1000,
                    },
                };
                let app = creneau_eligibility::Application::build(settings).await?;
                let port = app.port();
                let (stop, task) = spawn(|stopped| {
                    app.run_until(async {
                        let _ = stopped.await;
                    })
                });
                (stop, task, port)
            }
            "centre-directory" => {
                let settings = creneau_centre_directory::Settings {
                    server: server(c, port),
                    database: c.databases.settings_for(service),
                    telemetry: TelemetrySettings::default(),
                    centre_directory: creneau_centre_directory::CentreDirectorySettings::new(self.slot_inventory_url()),
                };
                let app = creneau_centre_directory::Application::build(settings).await?;
                let port = app.port();
                let (stop, task) = spawn(|stopped| {
                    app.run_until(async {
                        let _ = stopped.await;
                    })
                });
                (stop, task, port)
            }
            "gateway" => {
                let settings = creneau_gateway::Settings {
                    server: server(c, port),
                    telemetry: TelemetrySettings::default(),
                    gateway: creneau_gateway::GatewaySettings {
                        eligibility_url: peer("eligibility"),
                        centre_directory_url: peer("centre-directory"),
                        slot_inventory_url: self.slot_inventory_url(),
                        backend_timeout_ms: 5000,
                        max_body_bytes: 64 * 1024,
                    },
                    queue: c.queue.clone(),
                    database: c.queue.enabled.then(|| c.databases.settings_for("gateway")),
                };
                let app = creneau_gateway::Application::build(settings).await?;
                let port = app.port();
                let (stop, task) = spawn(|stopped| {
                    app.run_until(async {
                        let _ = stopped.await;
                    })
                });
                (stop, task, port)
            }
            other => anyhow::bail!("unknown service {other:?}"),
        };
        self.services.insert(service, Running { port, stop, task });
        self.ports.insert(service, port);
        Ok(())
    }

    /// Stops one service gracefully and waits for it; returns its port.
    pub async fn stop_service(&mut self, service: &'static str) -> anyhow::Result<u16> {
        let running = self.services.remove(service).with_context(|| format!("{service} is not running"))?;
        let _ = running.stop.send(());
        running.task.await??;
        Ok(running.port)
    }

    /// Stops everything, callers first.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for service in SERVICES.into_iter().rev() {
            if self.services.contains_key(service) {
                self.stop_service(service).await?;
            }
            if service == "slot-inventory" {
                for index in 0..self.replicas.len() {
                    if self.replicas[index].running.is_some() {
                        self.stop_replica(index).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Applies every service's pending migrations to its database.
pub async fn migrate_all(databases: &Databases) -> anyhow::Result<()> {
    if let Databases::SqliteDir(dir) = databases {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for service in creneau_migrations::SERVICES {
        let db = creneau_kit::db::connect(&databases.settings_for(service).for_migrations())
            .await
            .with_context(|| format!("connecting to the {service} database"))?;
        creneau_migrations::up(service, &db).await.with_context(|| format!("migrating {service}"))?;
        db.close().await?;
    }
    Ok(())
}
