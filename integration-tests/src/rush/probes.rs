//! What Kubernetes would ask each service every second: is it alive
//! (liveness: restart it if not), is it ready (readiness: send it traffic)?
//! The rush asks the same, under load and through faults, and counts the
//! answers: a liveness failure while a service is merely busy would be a
//! needless restart at the worst moment.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::processes::Services;

/// The chart's probes wait this long for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

pub enum Probe {
    Grpc(u16),
    Http(String),
}

impl Probe {
    pub fn of(services: &Services, service: &str) -> Self {
        match service {
            "gateway" => Probe::Http(services.gateway.clone()),
            other => Probe::Grpc(services.port(other).unwrap_or(0)),
        }
    }

    pub async fn alive(&self) -> bool {
        match self {
            Probe::Grpc(port) => grpc(*port, creneau_kit::server::LIVENESS).await,
            Probe::Http(base) => http(&format!("{base}/healthz")).await,
        }
    }

    pub async fn ready(&self) -> bool {
        match self {
            Probe::Grpc(port) => grpc(*port, "").await,
            Probe::Http(base) => http(&format!("{base}/readyz")).await,
        }
    }
}

async fn grpc(port: u16, service: &str) -> bool {
    let ask = async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")).ok()?.connect().await.ok()?;
        let answer = HealthClient::new(channel).check(HealthCheckRequest { service: service.into() }).await.ok()?;
        Some(answer.into_inner().status == ServingStatus::Serving as i32)
    };
    tokio::time::timeout(TIMEOUT, ask).await.ok().flatten().unwrap_or(false)
}

async fn http(url: &str) -> bool {
    let ask = async { reqwest::get(url).await.ok().map(|r| r.status().is_success()) };
    tokio::time::timeout(TIMEOUT, ask).await.ok().flatten().unwrap_or(false)
}

/// One service's probes over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeCounts {
    pub checks: u64,
    /// Liveness failures while nothing was done to this service: each one
    /// a restart Kubernetes would have made of a live process.
    pub liveness_failures: u64,
    /// Liveness failures while a fault had it down or frozen (expected).
    pub liveness_failures_in_faults: u64,
    pub readiness_failures: u64,
}

/// When each target's faults began and when it answered again (none while
/// it is still down), shared with the injector.
#[derive(Clone, Default)]
pub struct Faulted(Arc<Mutex<HashMap<String, Vec<Window>>>>);

/// When a fault began, and when its target answered again.
type Window = (Instant, Option<Instant>);

impl Faulted {
    pub fn began(&self, target: &str) {
        self.0.lock().expect("faults").entry(target.to_owned()).or_default().push((Instant::now(), None));
    }

    pub fn back(&self, target: &str) {
        if let Some(last) = self.0.lock().expect("faults").get_mut(target).and_then(|w| w.last_mut()) {
            last.1 = Some(Instant::now());
        }
    }

    /// Whether a probe asked during `asked` overlapped a fault of
    /// `target`, or the time a probe's answer may take after it: a process
    /// resumed from a pause first works through what queued meanwhile.
    fn covers(&self, target: &str, asked: (Instant, Instant)) -> bool {
        let faults = self.0.lock().expect("faults");
        faults.get(target).is_some_and(|windows| {
            windows.iter().any(|(began, back)| asked.1 >= *began && back.is_none_or(|back| asked.0 <= back + TIMEOUT))
        })
    }
}

/// Asks every service both questions each second until `done`: stricter
/// than the chart, whose liveness probe gives up only after six failures
/// ten seconds apart; here one failure counts.
pub async fn poll(
    services: Arc<Services>,
    faulted: Faulted,
    done: Arc<AtomicBool>,
) -> BTreeMap<&'static str, ProbeCounts> {
    let mut counts: BTreeMap<&'static str, ProbeCounts> = BTreeMap::new();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !done.load(Relaxed) {
        interval.tick().await;
        let asked = creneau::SERVICES.iter().map(|service| {
            let probe = Probe::of(&services, service);
            async move {
                let started = Instant::now();
                let (alive, ready) = (probe.alive().await, probe.ready().await);
                (*service, alive, ready, (started, Instant::now()))
            }
        });
        for (service, alive, ready, asked) in futures::future::join_all(asked).await {
            let in_fault = faulted.covers(service, asked);
            let c = counts.entry(service).or_default();
            c.checks += 1;
            match (alive, in_fault) {
                (true, _) => {}
                (false, true) => c.liveness_failures_in_faults += 1,
                (false, false) => c.liveness_failures += 1,
            }
            c.readiness_failures += u64::from(!ready);
        }
    }
    counts
}
