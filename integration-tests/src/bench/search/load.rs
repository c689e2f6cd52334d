//! Closed-loop load: each client sends its next request as soon as it has
//! read the previous answer in full, taking the next URL from a shared
//! list, so every client stays busy until the list is done. The gateway
//! and nginx are driven by this same code with the same client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::bench::stats::{Latency, ms};

/// One run's figures.
pub struct Measured {
    pub requests: usize,
    pub latency: Latency,
    pub per_s: f64,
}

/// The one HTTP client of the benchmark: as many pooled connections per
/// host as there are clients.
pub fn client(clients: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(clients).build()?)
}

/// Sends `base` + each of `paths` from `clients` concurrent clients.
pub async fn drive(http: &reqwest::Client, base: &str, paths: &[String], clients: usize) -> anyhow::Result<Measured> {
    anyhow::ensure!(!paths.is_empty(), "a run needs at least one request");
    let urls: Arc<Vec<String>> = Arc::new(paths.iter().map(|path| format!("{base}{path}")).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (http, urls, next) = (http.clone(), urls.clone(), next.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while let Some(url) = urls.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let at = Instant::now();
                    let response = http.get(url).send().await?;
                    anyhow::ensure!(response.status().is_success(), "{url}: {}", response.status());
                    response.bytes().await?;
                    samples.push(at.elapsed());
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(urls.len());
    for task in tasks {
        samples.extend(task.await??);
    }
    let elapsed = began.elapsed().as_secs_f64();
    Ok(Measured { requests: samples.len(), per_s: samples.len() as f64 / elapsed, latency: Latency::of(samples) })
}

/// A few requests per client, not counted: the first run against a host
/// would otherwise also time the opening of every connection.
pub async fn warm(http: &reqwest::Client, base: &str, path: &str, clients: usize) -> anyhow::Result<()> {
    drive(http, base, &vec![path.to_owned(); clients.max(1) * 4], clients).await.map(|_| ())
}

pub fn header() {
    println!(
        "{:<26} {:>9} {:>10} {:>10} {:>10} {:>11} {:>8}",
        "query", "requests", "p50", "p99", "max", "requests/s", "÷ nginx"
    );
}

/// A row; `nginx_per_s` is the rate of nginx serving the same kind of
/// answer, so the last column is the share of the physical rate reached.
pub fn row(label: &str, m: &Measured, nginx_per_s: f64) {
    println!(
        "{label:<26} {:>9} {:>10} {:>10} {:>10} {:>11.0} {:>8.3}",
        m.requests,
        ms(m.latency.p50),
        ms(m.latency.p99),
        ms(m.latency.max),
        m.per_s,
        m.per_s / nginx_per_s
    );
}
