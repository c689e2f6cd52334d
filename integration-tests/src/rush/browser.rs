//! The citizens' side of the wire: every request goes through here, so
//! every one has a deadline, is counted and is timed — including the time
//! spent waiting for one of the generator's connections, reported apart
//! so that a generator short of connections says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use super::record::{Endpoint, Live, Outcome, Sample, problem_of};

pub struct Browser {
    http: reqwest::Client,
    base: String,
    permits: Arc<Semaphore>,
    timeout: Duration,
    epoch: Instant,
    pub live: Live,
}

pub struct Reply {
    pub outcome: Outcome,
    pub body: Value,
}

impl Reply {
    pub fn status(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Status(s) => Some(s),
            _ => None,
        }
    }
}

impl Browser {
    pub fn new(base: &str, connections: usize, timeout: Duration, epoch: Instant) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            permits: Arc::new(Semaphore::new(connections.max(1))),
            timeout,
            epoch,
            live: Live::default(),
        })
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    pub fn ms_since_start(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(format!("{}{path}", self.base))
    }

    /// Sends `request`, records its sample in `samples`.
    pub async fn send(&self, samples: &mut Vec<Sample>, endpoint: Endpoint, request: reqwest::RequestBuilder) -> Reply {
        let started = Instant::now();
        let mut queued = None;
        let exchange = async {
            let _permit = self.permits.acquire().await.expect("never closed");
            queued = Some(started.elapsed());
            let response = request.send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?;
            anyhow::Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
        };
        let (outcome, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, body))) => (Outcome::Status(status), body),
            Ok(Err(error)) if is_timeout(&error) => (Outcome::Timeout, Value::Null),
            Ok(Err(_)) => (Outcome::Failed, Value::Null),
            Err(_) if queued.is_none() => (Outcome::NotSent, Value::Null),
            Err(_) => (Outcome::Timeout, Value::Null),
        };
        Live::bump(&self.live.requests);
        match outcome {
            Outcome::Status(s) if s >= 500 => Live::bump(&self.live.server_errors),
            Outcome::Timeout => Live::bump(&self.live.timeouts),
            Outcome::NotSent => Live::bump(&self.live.not_sent),
            _ => {}
        }
        let problem = match outcome {
            Outcome::Status(400..=499) => body["type"].as_str().and_then(problem_of),
            _ => None,
        };
        samples.push(Sample {
            endpoint,
            outcome,
            problem,
            done_ms: self.ms_since_start(),
            latency_us: started.elapsed().as_micros() as u32,
            queued_us: queued.unwrap_or(self.timeout).as_micros() as u32,
        });
        Reply { outcome, body }
    }
}

fn is_timeout(error: &anyhow::Error) -> bool {
    error.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
}
