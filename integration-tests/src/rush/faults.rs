//! Faults injected mid-rush, as `action:target@start[+duration]`:
//!
//! - `kill:slot-inventory@30s`: SIGKILL, then started again at once (or
//!   after `+duration`), as Kubernetes restarts a crashed container;
//! - `stop:notification@20s+600s`: SIGTERM (a graceful drain), started
//!   again `duration` later;
//! - `pause:slot-inventory@30s+10s`: SIGSTOP, SIGCONT `duration` later: a
//!   frozen process keeps its connections and open transactions;
//! - `restart:postgres@40s`: PostgreSQL restarted (fast shutdown: every
//!   session cut); `stop:postgres@40s+20s` leaves it down for a while.
//!
//! Times count from the start of the run. Each fault records when it began
//! and ended and when its target answered again; the report adds when the
//! platform sold again after it.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use super::probes::{Faulted, Probe};
use super::processes::Services;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Kill,
    Stop,
    Pause,
    Restart,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub action: Action,
    pub target: String,
    pub at: Duration,
    pub lasting: Option<Duration>,
}

fn seconds(raw: &str) -> anyhow::Result<Duration> {
    let number = raw.strip_suffix('s').unwrap_or(raw);
    let secs: f64 = number.parse().with_context(|| format!("{raw:?} is not a number of seconds"))?;
    anyhow::ensure!(secs.is_finite() && secs >= 0.0, "{raw:?} is not a number of seconds");
    Ok(Duration::from_secs_f64(secs))
}

impl FromStr for Fault {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> anyhow::Result<Self> {
        let usage = "a fault is action:target@start[+duration], e.g. kill:slot-inventory@30s";
        let (action, rest) = spec.split_once(':').context(usage)?;
        let (target, when) = rest.split_once('@').context(usage)?;
        let (at, lasting) = match when.split_once('+') {
            Some((at, lasting)) => (seconds(at)?, Some(seconds(lasting)?)),
            None => (seconds(when)?, None),
        };
        let action = match action {
            "kill" => Action::Kill,
            "stop" => Action::Stop,
            "pause" => Action::Pause,
            "restart" => Action::Restart,
            other => bail!("unknown fault {other:?}: kill, stop, pause or restart"),
        };
        let is_service = creneau::SERVICES.contains(&target);
        match (action, target, lasting) {
            (_, "postgres", _) if action == Action::Pause => bail!("pause:postgres is not supported"),
            (_, "postgres", _) => {}
            (_, _, _) if !is_service => bail!("unknown target {target:?}: postgres or one of {:?}", creneau::SERVICES),
            (Action::Restart, _, _) => bail!("restart is for postgres; a service is killed or stopped"),
            (Action::Stop | Action::Pause, _, None) => bail!("{spec}: say for how long, e.g. @20s+60s"),
            _ => {}
        }
        Ok(Self { action, target: target.to_owned(), at, lasting })
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let action = serde_json::to_value(self.action).ok().and_then(|v| v.as_str().map(str::to_owned));
        write!(f, "{}:{}@{}s", action.unwrap_or_default(), self.target, self.at.as_secs_f64())?;
        if let Some(lasting) = self.lasting {
            write!(f, "+{}s", lasting.as_secs_f64())?;
        }
        Ok(())
    }
}

/// What a fault did, in seconds from the start of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Injected {
    pub fault: String,
    pub target: String,
    pub began_s: f64,
    /// When the target was started or resumed again.
    pub ended_s: Option<f64>,
    /// When the target answered again (a service's liveness, PostgreSQL
    /// accepting connections).
    pub back_s: Option<f64>,
    /// Filled in by the analysis: the first booking acknowledged after
    /// the target was back, and how long after.
    pub first_booking_after_s: Option<f64>,
    pub recovered_in_s: Option<f64>,
    pub error: Option<String>,
}

/// Runs every fault at its time; returns what each did.
pub async fn inject(faults: Vec<Fault>, services: Arc<Services>, faulted: Faulted, epoch: Instant) -> Vec<Injected> {
    let runs = faults.into_iter().map(|fault| {
        let (services, faulted) = (services.clone(), faulted.clone());
        async move {
            tokio::time::sleep_until((epoch + fault.at).into()).await;
            let since = |at: Instant| at.duration_since(epoch).as_secs_f64();
            faulted.began(&fault.target);
            let began = Instant::now();
            eprintln!("fault: {fault} now");
            let done = apply(&fault, &services, epoch).await;
            let (ended, error) = match done {
                Ok(ended) => (ended, None),
                Err(error) => (None, Some(format!("{error:#}"))),
            };
            let back = back_up(&fault.target, &services).await;
            faulted.back(&fault.target);
            if let Some(error) = &error {
                eprintln!("fault: {fault} failed: {error}");
            }
            Injected {
                fault: fault.to_string(),
                target: fault.target.clone(),
                began_s: since(began),
                ended_s: ended.map(since),
                back_s: back.map(since),
                first_booking_after_s: None,
                recovered_in_s: None,
                error,
            }
        }
    });
    futures::future::join_all(runs).await
}

/// Does the fault and undoes it when it has a duration; returns when the
/// target was started or resumed again.
async fn apply(fault: &Fault, services: &Services, epoch: Instant) -> anyhow::Result<Option<Instant>> {
    let until = |lasting: Duration| tokio::time::sleep_until((epoch + fault.at + lasting).into());
    let target = fault.target.as_str();
    if target == "postgres" {
        match (fault.action, fault.lasting) {
            (Action::Restart, _) => pg_ctlcluster("restart", Some("fast"))?,
            (action, lasting) => {
                pg_ctlcluster("stop", Some(if action == Action::Kill { "immediate" } else { "fast" }))?;
                until(lasting.unwrap_or_default()).await;
                pg_ctlcluster("start", None)?;
            }
        }
        return Ok(Some(Instant::now()));
    }
    match fault.action {
        Action::Kill => {
            services.kill(target).await?;
            until(fault.lasting.unwrap_or_default()).await;
            services.launch(target).await?;
        }
        Action::Stop => {
            services.terminate(target).await?;
            until(fault.lasting.unwrap_or_default()).await;
            services.launch(target).await?;
        }
        Action::Pause => {
            services.signal(target, "STOP").await?;
            until(fault.lasting.unwrap_or_default()).await;
            services.signal(target, "CONT").await?;
        }
        Action::Restart => bail!("restart is for postgres"),
    }
    Ok(Some(Instant::now()))
}

/// The local cluster, through the command the machine starts it with.
fn pg_ctlcluster(command: &str, mode: Option<&str>) -> anyhow::Result<()> {
    let version = std::fs::read_dir("/etc/postgresql")
        .context("no /etc/postgresql: PostgreSQL faults need the local cluster")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max()
        .context("no PostgreSQL cluster in /etc/postgresql")?;
    let mut args = vec!["--skip-systemctl-redirect", &version, "main", command];
    if let Some(mode) = mode {
        args.extend(["-m", mode]);
    }
    let status = std::process::Command::new("pg_ctlcluster").args(&args).status().context("running pg_ctlcluster")?;
    anyhow::ensure!(status.success(), "pg_ctlcluster {command} failed");
    Ok(())
}

/// Waits (up to a minute) until the target answers again.
async fn back_up(target: &str, services: &Services) -> Option<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let answering = match target {
            "postgres" => tokio::net::TcpStream::connect(("127.0.0.1", 5432)).await.is_ok() && pg_ready(),
            service => Probe::of(services, service).alive().await,
        };
        if answering {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn pg_ready() -> bool {
    std::process::Command::new("pg_isready")
        .args(["-h", "127.0.0.1", "-p", "5432", "-q"])
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_read_as_written() {
        let kill: Fault = "kill:slot-inventory@30s".parse().unwrap();
        assert_eq!(
            (kill.action, kill.target.as_str(), kill.at, kill.lasting),
            (Action::Kill, "slot-inventory", Duration::from_secs(30), None)
        );
        let stop: Fault = "stop:notification@20s+600s".parse().unwrap();
        assert_eq!(stop.lasting, Some(Duration::from_secs(600)));
        assert_eq!(stop.to_string(), "stop:notification@20s+600s");
        assert!("restart:postgres@40s".parse::<Fault>().is_ok());
        assert!("pause:slot-inventory@30+5".parse::<Fault>().is_ok());
        for bad in [
            "kill:nobody@3s",
            "explode:gateway@3s",
            "stop:gateway@3s",
            "pause:postgres@3s+1s",
            "kill:gateway",
            "kill:gateway@-1s",
            "restart:gateway@3s",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }
}
