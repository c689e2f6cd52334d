//! gRPC client channels between services: lazily connected (a peer that is
//! down at boot is not fatal), with keep-alives and W3C trace context
//! injected into every call, balanced over every replica of the peer.
//!
//! gRPC keeps one HTTP/2 connection open, so a Kubernetes ClusterIP Service
//! would pin a caller to the replica it first reached. Instead an address
//! names every replica and the client spreads calls over them
//! (power of two choices, least pending requests):
//!
//! - `http://10.0.0.7:50053`: one literal IP, a plain channel;
//! - `http://a:50053,http://b:50053`: a fixed list;
//! - `http://slot-inventory:50053`: a name resolved again every few seconds
//!   (a headless Service's DNS), each A/AAAA record an endpoint, endpoints
//!   added and removed as the records change.
//!
//! An endpoint whose connection fails (refused, reset) leaves the balancer at
//! once and comes back when a TCP probe reaches it again, so a dead replica
//! costs the calls in flight on it, not every other call routed to it
//! before the next resolution.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::Change;
use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
use tower::retry::budget::{Budget, TpsBudget};
use tower::util::BoxService;
use tower::{BoxError, Service};

use crate::telemetry::TraceContextInjector;

/// The channel type every generated client is built on.
pub type GrpcChannel = InterceptedService<ClientChannel, TraceContextInjector>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Response = http::Response<Body>;

/// Calls wait this long for a first endpoint (name not yet resolved, or
/// every replica down) before failing with `UNAVAILABLE`.
const NO_ENDPOINT_WAIT: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const BUFFER: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("invalid gRPC address {address:?}: {reason}")]
pub struct AddressError {
    address: String,
    reason: String,
}

impl AddressError {
    fn new(address: &str, reason: impl fmt::Display) -> Self {
        Self { address: address.to_owned(), reason: reason.to_string() }
    }
}

/// How a balanced channel follows its endpoints.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// How often a DNS name is resolved again.
    pub resolve_interval: Duration,
    /// How often an endpoint out of the balancer is probed to come back.
    pub probe_interval: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self { resolve_interval: Duration::from_secs(5), probe_interval: Duration::from_millis(500) }
    }
}

/// Finds the addresses behind a balanced channel, asked again every
/// `resolve_interval`. DNS in production; tests give their own.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self) -> BoxFuture<std::io::Result<Vec<SocketAddr>>>;
}

/// A channel to `address`: one URL, or several separated by commas (see the
/// module documentation). Parsed now; connected on first use, inside the
/// runtime (so it may be called before one exists, to validate settings).
pub fn channel(address: &str) -> Result<GrpcChannel, AddressError> {
    channel_with(address, ClientOptions::default())
}

pub fn channel_with(address: &str, options: ClientOptions) -> Result<GrpcChannel, AddressError> {
    let source = Source::parse(address)?;
    Ok(InterceptedService::new(ClientChannel::new(source, options), TraceContextInjector))
}

/// A channel balanced over whatever `resolver` answers, as `scheme://addr`.
pub fn resolved_channel(resolver: Arc<dyn Resolve>, options: ClientOptions) -> GrpcChannel {
    InterceptedService::new(ClientChannel::new(Source::Custom(resolver), options), TraceContextInjector)
}

fn configure(endpoint: Endpoint) -> Endpoint {
    endpoint
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
}

fn endpoint(address: &str) -> Result<Endpoint, AddressError> {
    let endpoint = Endpoint::from_shared(address.to_owned()).map_err(|e| AddressError::new(address, e))?;
    let uri = endpoint.uri();
    if uri.host().is_none_or(str::is_empty) {
        return Err(AddressError::new(address, "no host"));
    }
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(AddressError::new(address, "the scheme must be http or https"));
    }
    Ok(configure(endpoint))
}

fn host_port(uri: &Uri) -> (String, u16) {
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    (host, port)
}

/// Where a channel's endpoints come from.
#[derive(Clone)]
enum Source {
    /// One literal IP: nothing to resolve or balance.
    Single(Box<Endpoint>),
    Fixed(Vec<Endpoint>),
    Dns {
        uri: Uri,
        host: String,
        port: u16,
    },
    Custom(Arc<dyn Resolve>),
}

impl Source {
    fn parse(address: &str) -> Result<Self, AddressError> {
        let parts: Vec<&str> = address.split(',').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(AddressError::new(address, "empty address in the list"));
        }
        if parts.len() > 1 {
            return Ok(Self::Fixed(parts.into_iter().map(endpoint).collect::<Result<_, _>>()?));
        }
        let single = endpoint(parts[0])?;
        let uri = single.uri().clone();
        let (host, port) = host_port(&uri);
        if host.parse::<IpAddr>().is_ok() {
            Ok(Self::Single(Box::new(single)))
        } else {
            Ok(Self::Dns { uri, host, port })
        }
    }

    /// The endpoints right now, keyed by what identifies them.
    async fn targets(&self) -> std::io::Result<Vec<Target>> {
        let resolved = |uri: Option<&Uri>, addrs: Vec<SocketAddr>| {
            let scheme = uri.and_then(Uri::scheme_str).unwrap_or("http");
            addrs
                .into_iter()
                .filter_map(|addr| {
                    let url = format!("{scheme}://{addr}");
                    let mut endpoint = endpoint(&url).ok()?;
                    // Keep `:authority` the name callers asked for.
                    if let Some(uri) = uri {
                        endpoint = endpoint.origin(uri.clone());
                    }
                    Some(Target { key: url, endpoint, probe: (addr.ip().to_string(), addr.port()) })
                })
                .collect()
        };
        match self {
            Self::Single(endpoint) => Ok(vec![Target::of((**endpoint).clone())]),
            Self::Fixed(endpoints) => Ok(endpoints.iter().cloned().map(Target::of).collect()),
            Self::Dns { uri, host, port } => {
                let addrs = tokio::net::lookup_host((host.as_str(), *port)).await?.collect();
                Ok(resolved(Some(uri), addrs))
            }
            Self::Custom(resolver) => Ok(resolved(None, resolver.resolve().await?)),
        }
    }

    fn is_fixed(&self) -> bool {
        matches!(self, Self::Single(_) | Self::Fixed(_))
    }
}

#[derive(Clone)]
struct Target {
    key: String,
    endpoint: Endpoint,
    probe: (String, u16),
}

impl Target {
    fn of(endpoint: Endpoint) -> Self {
        Self { key: endpoint.uri().to_string(), probe: host_port(endpoint.uri()), endpoint }
    }
}

/// A lazily built channel: a plain one for a single IP, else a balancer fed
/// by a discovery task. Clones share the balancer.
pub struct ClientChannel {
    shared: Arc<Shared>,
    inner: Option<Inner>,
}

struct Shared {
    source: Source,
    options: ClientOptions,
    built: OnceLock<Inner>,
}

impl Clone for ClientChannel {
    fn clone(&self) -> Self {
        // A fresh handle: readiness reserved on one handle is not shared.
        Self { shared: self.shared.clone(), inner: self.shared.built.get().cloned() }
    }
}

impl fmt::Debug for ClientChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientChannel").field("options", &self.shared.options).finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Inner {
    Single(Channel),
    Balanced { service: Buffer<http::Request<Body>, BoxFuture<Result<Response, BoxError>>>, up: Arc<AtomicUsize> },
}

impl ClientChannel {
    fn new(source: Source, options: ClientOptions) -> Self {
        Self { shared: Arc::new(Shared { source, options, built: OnceLock::new() }), inner: None }
    }

    /// Builds on first use: spawning needs the runtime.
    fn inner(&mut self) -> &mut Inner {
        let shared = &self.shared;
        self.inner.get_or_insert_with(|| shared.built.get_or_init(|| shared.build()).clone())
    }
}

impl Shared {
    fn build(&self) -> Inner {
        if let Source::Single(endpoint) = &self.source {
            return Inner::Single(endpoint.connect_lazy());
        }
        let (changes, received) = mpsc::channel(64);
        let up = Arc::new(AtomicUsize::new(0));
        let discover = PendingRequestsDiscover::new(ReceiverStream::new(received), CompleteOnResponse::default());
        let balance = BoxService::new(Balance::new(discover));
        let service = Buffer::new(balance, BUFFER);
        tokio::spawn(discover_endpoints(self.source.clone(), self.options, changes, up.clone()));
        Inner::Balanced { service, up }
    }
}

impl Service<http::Request<Body>> for ClientChannel {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self.inner() {
            Inner::Single(channel) => channel.poll_ready(cx).map_err(Into::into),
            Inner::Balanced { service, .. } => service.poll_ready(cx),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.inner() {
            Inner::Single(channel) => {
                let call = channel.call(request);
                Box::pin(async move { call.await.map_err(Into::into) })
            }
            Inner::Balanced { service, up } => {
                let waiting = up.load(Ordering::Acquire) == 0;
                let call = service.call(request);
                Box::pin(async move {
                    if !waiting {
                        return call.await;
                    }
                    // No endpoint yet (or none left): wait a little for one
                    // rather than forever in the balancer.
                    match tokio::time::timeout(NO_ENDPOINT_WAIT, call).await {
                        Ok(result) => result,
                        Err(_) => Err(tonic::Status::unavailable("no reachable endpoint").into()),
                    }
                })
            }
        }
    }
}

/// One endpoint in the balancer. Leaves it (its readiness fails) after a
/// failed connection; a new one replaces it when a probe succeeds.
struct Replica {
    channel: Channel,
    health: Arc<Health>,
}

struct Health {
    down: AtomicBool,
    up: Arc<AtomicUsize>,
}

impl Health {
    fn new(up: Arc<AtomicUsize>) -> Arc<Self> {
        up.fetch_add(1, Ordering::AcqRel);
        Arc::new(Self { down: AtomicBool::new(false), up })
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn mark_down(&self) {
        if !self.down.swap(true, Ordering::AcqRel) {
            self.up.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A deadline that ran out says nothing about the endpoint; any other error
/// from the channel is a failed connection.
fn is_connection_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if error.is::<tonic::TimeoutExpired>() {
            return false;
        }
        source = error.source();
    }
    true
}

impl Service<http::Request<Body>> for Replica {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.health.is_down() {
            return Poll::Ready(Err("endpoint out of the balancer after a failed connection".into()));
        }
        self.channel.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let health = self.health.clone();
        let call = self.channel.call(request);
        Box::pin(async move {
            call.await.map_err(|error| {
                if is_connection_failure(&error) {
                    health.mark_down();
                }
                error.into()
            })
        })
    }
}

type Changes = mpsc::Sender<Result<Change<String, Replica>, Infallible>>;

struct Known {
    target: Target,
    health: Arc<Health>,
}

async fn reachable(target: &Target) -> bool {
    let (host, port) = &target.probe;
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), *port))).await,
        Ok(Ok(_))
    )
}

/// Keeps the balancer's endpoints in step with the source: resolves every
/// `resolve_interval` (once for a fixed list), puts an endpoint in when a
/// probe reaches it, takes it out when it disappears. Ends with the channel.
async fn discover_endpoints(source: Source, options: ClientOptions, changes: Changes, up: Arc<AtomicUsize>) {
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut pending: Vec<Target> = Vec::new();
    let mut next_resolve = Some(tokio::time::Instant::now());
    loop {
        if changes.is_closed() {
            return;
        }
        let now = tokio::time::Instant::now();
        if next_resolve.is_some_and(|at| now >= at) {
            // A fixed list is read once.
            next_resolve = (!source.is_fixed()).then(|| now + options.resolve_interval);
            match source.targets().await {
                Ok(targets) => {
                    let keys: std::collections::HashSet<&str> = targets.iter().map(|t| t.key.as_str()).collect();
                    let gone: Vec<String> = known.keys().filter(|k| !keys.contains(k.as_str())).cloned().collect();
                    for key in gone {
                        if let Some(old) = known.remove(&key) {
                            tracing::info!(endpoint = %key, "endpoint removed");
                            old.health.mark_down();
                        }
                        if changes.send(Ok(Change::Remove(key))).await.is_err() {
                            return;
                        }
                    }
                    pending = targets.into_iter().filter(|t| !known.contains_key(&t.key)).collect();
                }
                Err(error) => tracing::warn!(%error, "cannot resolve endpoints; keeping the last ones"),
            }
        }
        // New endpoints, and known ones out after a failure, go in once a
        // probe reaches them.
        let candidates: Vec<Target> =
            pending.drain(..).chain(known.values().filter(|k| k.health.is_down()).map(|k| k.target.clone())).collect();
        let probes = futures::future::join_all(candidates.iter().map(reachable)).await;
        for (target, ok) in candidates.into_iter().zip(probes) {
            if !ok {
                if !known.contains_key(&target.key) {
                    // Not yet in: try again next round.
                    pending.push(target);
                }
                continue;
            }
            let health = Health::new(up.clone());
            let replica = Replica { channel: target.endpoint.connect_lazy(), health: health.clone() };
            tracing::debug!(endpoint = %target.key, "endpoint in");
            let key = target.key.clone();
            known.insert(key.clone(), Known { target, health });
            if changes.send(Ok(Change::Insert(key, replica))).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(options.probe_interval).await;
    }
}

/// Says whether a call (by its path, `/package.Service/Method`) may run
/// more than once: reads, and writes made idempotent by a key.
pub type RetrySafe = fn(&str) -> bool;

/// Runs again, up to `retries` more times with a short growing backoff,
/// the calls `safe` names when the peer was unavailable: the connection
/// failed (refused, reset: a replica that died) or the answer was
/// `UNAVAILABLE`. A deadline that ran out is not retried. Safe calls are
/// unary: their request and answer are buffered to be replayed and checked.
///
/// Retries draw on a budget shared by every clone: at most a tenth of the
/// calls of the last ten seconds (and ten a second in any case). A replica
/// that died costs a retry; a saturated platform does not get its load
/// multiplied by the retries of every caller at the worst moment.
#[derive(Clone)]
pub struct RetryUnavailable<S> {
    inner: S,
    safe: RetrySafe,
    retries: u32,
    backoff: Duration,
    budget: Arc<TpsBudget>,
}

/// Retries allowed per call made, over the budget's window.
pub const RETRY_RATIO: f32 = 0.1;

impl<S> RetryUnavailable<S> {
    /// Two more attempts, 25 ms then 50 ms apart (plus jitter), within the
    /// retry budget.
    pub fn new(inner: S, safe: RetrySafe) -> Self {
        Self {
            inner,
            safe,
            retries: 2,
            backoff: Duration::from_millis(25),
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, RETRY_RATIO)),
        }
    }

    pub fn with_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// A budget of `min_per_sec` retries a second plus `ratio` of the calls.
    pub fn with_budget(mut self, min_per_sec: u32, ratio: f32) -> Self {
        self.budget = Arc::new(TpsBudget::new(Duration::from_secs(10), min_per_sec, ratio));
        self
    }
}

fn is_unavailable(headers: Option<&http::HeaderMap>) -> bool {
    headers.and_then(|h| h.get("grpc-status")).is_some_and(|status| status.as_bytes() == b"14")
}

/// What one attempt gave: a final answer, or a reason to try again.
enum Attempt {
    Done(Result<Response, BoxError>),
    Again(String),
}

impl<S, B> Service<http::Request<Body>> for RetryUnavailable<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError> + Send,
    S::Future: Send,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The ready handle serves the first attempt; later ones wait for
        // readiness on it again.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        if !(self.safe)(request.uri().path()) {
            let call = inner.call(request);
            return Box::pin(async move { Ok(call.await.map_err(Into::into)?.map(Body::new)) });
        }
        let (retries, backoff, budget) = (self.retries, self.backoff, self.budget.clone());
        budget.deposit();
        Box::pin(async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;

            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let mut attempt = 0;
            loop {
                let mut request = http::Request::new(Body::new(http_body_util::Full::new(body.clone())));
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = parts.uri.clone();
                *request.version_mut() = parts.version;
                *request.headers_mut() = parts.headers.clone();
                *request.extensions_mut() = parts.extensions.clone();
                let may_retry = || attempt < retries && budget.withdraw();
                let outcome = match inner.ready().await {
                    Err(error) => Attempt::Done(Err(error.into())),
                    Ok(ready) => match ready.call(request).await.map_err(Into::into) {
                        Err(error) if is_connection_failure(&*error) && may_retry() => {
                            Attempt::Again(error.to_string())
                        }
                        Err(error) => Attempt::Done(Err(error)),
                        Ok(response) if is_unavailable(Some(response.headers())) && may_retry() => {
                            Attempt::Again("UNAVAILABLE".into())
                        }
                        Ok(response) => {
                            let (parts, body) = response.into_parts();
                            match body.collect().await {
                                Err(error) if may_retry() => Attempt::Again(error.into().to_string()),
                                Err(error) => Attempt::Done(Err(error.into())),
                                Ok(collected) if is_unavailable(collected.trailers()) && may_retry() => {
                                    Attempt::Again("UNAVAILABLE".into())
                                }
                                Ok(collected) => {
                                    let trailers = collected.trailers().cloned();
                                    let body = http_body_util::Full::new(collected.to_bytes())
                                        .with_trailers(std::future::ready(trailers.map(Ok)));
                                    Attempt::Done(Ok(http::Response::from_parts(parts, Body::new(body))))
                                }
                            }
                        }
                    },
                };
                match outcome {
                    Attempt::Done(result) => return result,
                    Attempt::Again(why) => {
                        attempt += 1;
                        tracing::warn!(rpc.method = parts.uri.path(), attempt, %why, "peer unavailable; retrying");
                        let jitter = Duration::from_millis(rand::random_range(0..10));
                        tokio::time::sleep(backoff * 2u32.pow(attempt - 1) + jitter).await;
                    }
                }
            }
        })
    }
}

/// Waits until the server at `url` reports itself ready (gRPC health,
/// overall status), for at most `patience`.
pub async fn wait_until_serving(url: &str, patience: Duration) -> Result<(), String> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let channel = Endpoint::from_shared(url.to_owned()).map_err(|e| e.to_string())?.connect_lazy();
    let mut health = HealthClient::new(channel);
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let status = health.check(HealthCheckRequest { service: String::new() }).await;
        if status.is_ok_and(|s| s.into_inner().status == ServingStatus::Serving as i32) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{url} not ready after {} s", patience.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    use tokio::net::TcpListener;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    #[test]
    fn addresses_parse_into_sources() {
        assert!(matches!(Source::parse("http://127.0.0.1:50051").unwrap(), Source::Single(_)));
        assert!(matches!(Source::parse("http://[::1]:50051").unwrap(), Source::Single(_)));
        assert!(matches!(Source::parse("http://slot-inventory:50053").unwrap(), Source::Dns { port: 50053, .. }));
        match Source::parse("http://127.0.0.1:1, http://127.0.0.1:2").unwrap() {
            Source::Fixed(list) => assert_eq!(list.len(), 2),
            _ => panic!("a list is fixed"),
        }
        for bad in ["", "http://a:1,", "not a url", "ftp://a:1", "http://a:1,,http://b:2"] {
            assert!(Source::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_channel_can_be_made_outside_a_runtime() {
        // Settings are validated before the runtime starts.
        channel("http://127.0.0.1:1,http://127.0.0.1:2").unwrap();
        channel("http://slot-inventory:50053").unwrap();
    }

    /// A health server on `port` (0: any) counting the calls it answers.
    struct Replica {
        port: u16,
        calls: Arc<AtomicU64>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn replica(port: u16) -> Replica {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .layer(tower::util::MapRequestLayer::new(move |request: http::Request<Body>| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    request
                }))
                .add_service(health)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Replica { port, calls, stop: Some(stop), task }
    }

    impl Replica {
        fn calls(&self) -> u64 {
            self.calls.load(Ordering::Relaxed)
        }

        async fn stop(&mut self) {
            let _ = self.stop.take().unwrap().send(());
            (&mut self.task).await.unwrap();
        }
    }

    async fn check(client: &mut HealthClient<GrpcChannel>) -> Result<(), tonic::Status> {
        client.check(HealthCheckRequest { service: String::new() }).await.map(drop)
    }

    fn fast() -> ClientOptions {
        ClientOptions { resolve_interval: Duration::from_millis(100), probe_interval: Duration::from_millis(50) }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_list_spreads_calls_over_every_endpoint() {
        let replicas = [replica(0).await, replica(0).await, replica(0).await];
        let list = replicas.iter().map(|r| format!("http://127.0.0.1:{}", r.port)).collect::<Vec<_>>().join(",");
        let mut client = HealthClient::new(channel_with(&list, fast()).unwrap());
        let calls = futures::future::join_all((0..300).map(|_| {
            let mut client = client.clone();
            async move { check(&mut client).await }
        }))
        .await;
        assert!(calls.iter().all(Result::is_ok));
        check(&mut client).await.unwrap();
        for r in &replicas {
            let shares: Vec<u64> = replicas.iter().map(Replica::calls).collect();
            assert!(r.calls() >= 40, "each endpoint gets a share: {shares:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_endpoint_leaves_and_comes_back() {
        let mut replicas = [replica(0).await, replica(0).await];
        let list = replicas.iter().map(|r| format!("http://127.0.0.1:{}", r.port)).collect::<Vec<_>>().join(",");
        let mut client = HealthClient::new(channel_with(&list, fast()).unwrap());
        for _ in 0..20 {
            check(&mut client).await.unwrap();
        }
        let port = replicas[0].port;
        replicas[0].stop().await;
        let mut failures = 0;
        for _ in 0..100 {
            if check(&mut client).await.is_err() {
                failures += 1;
            }
        }
        assert!(failures <= 2, "a dead endpoint fails the calls that find it dead, then leaves: {failures}");
        replicas[0] = replica(port).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..100 {
            check(&mut client).await.unwrap();
        }
        assert!(replicas[0].calls() > 10, "the endpoint is back: {}", replicas[0].calls());
    }

    struct Fake(Mutex<Vec<SocketAddr>>);

    impl Resolve for Fake {
        fn resolve(&self) -> BoxFuture<std::io::Result<Vec<SocketAddr>>> {
            let addrs = self.0.lock().unwrap().clone();
            Box::pin(async move { Ok(addrs) })
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn resolved_endpoints_follow_the_records() {
        let replicas = [replica(0).await, replica(0).await, replica(0).await];
        let addr = |r: &Replica| SocketAddr::from(([127, 0, 0, 1], r.port));
        let records = Arc::new(Fake(Mutex::new(vec![addr(&replicas[0]), addr(&replicas[1])])));
        let mut client = HealthClient::new(resolved_channel(records.clone(), fast()));
        for _ in 0..100 {
            check(&mut client).await.unwrap();
        }
        assert_eq!(replicas[2].calls(), 0);
        assert!(replicas[0].calls() > 10 && replicas[1].calls() > 10);

        *records.0.lock().unwrap() = vec![addr(&replicas[1]), addr(&replicas[2])];
        tokio::time::sleep(Duration::from_millis(400)).await;
        let before = replicas[0].calls();
        for _ in 0..100 {
            check(&mut client).await.unwrap();
        }
        assert_eq!(replicas[0].calls(), before, "a removed record gets no more calls");
        assert!(replicas[2].calls() > 10, "a new record gets calls: {}", replicas[2].calls());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_name_with_no_reachable_endpoint_fails_unavailable() {
        let records = Arc::new(Fake(Mutex::new(vec![SocketAddr::from(([127, 0, 0, 1], 1))])));
        let mut client = HealthClient::new(resolved_channel(records, fast()));
        let status = check(&mut client).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn localhost_resolves_through_dns() {
        let r = replica(0).await;
        let mut client = HealthClient::new(channel_with(&format!("http://localhost:{}", r.port), fast()).unwrap());
        check(&mut client).await.unwrap();
        assert!(r.calls() >= 1);
    }

    /// A health server answering UNAVAILABLE to its first `failures` calls.
    async fn flaky(failures: u64) -> (u16, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(async move {
            let _reporter = _reporter;
            tonic::transport::Server::builder()
                .layer(tower::layer::layer_fn(move |inner| Flaky { inner, calls: counted.clone(), failures }))
                .add_service(health)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        (port, calls)
    }

    #[derive(Clone)]
    struct Flaky<S> {
        inner: S,
        calls: Arc<AtomicU64>,
        failures: u64,
    }

    impl<S> Service<http::Request<Body>> for Flaky<S>
    where
        S: Service<http::Request<Body>, Response = Response, Error = Infallible> + Send,
        S::Future: Send + 'static,
    {
        type Response = Response;
        type Error = Infallible;
        type Future = BoxFuture<Result<Response, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                return Box::pin(async { Ok(tonic::Status::unavailable("restarting").into_http()) });
            }
            Box::pin(self.inner.call(request))
        }
    }

    fn health_only(path: &str) -> bool {
        path == "/grpc.health.v1.Health/Check"
    }

    fn nothing(_: &str) -> bool {
        false
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_safe_call_is_retried_when_unavailable() {
        let (port, calls) = flaky(2).await;
        let channel = channel(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut client = HealthClient::new(RetryUnavailable::new(channel, health_only));
        client.check(HealthCheckRequest { service: String::new() }).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "two failures, then the answer");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn retries_stop_after_two() {
        let (port, calls) = flaky(10).await;
        let channel = channel(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut client = HealthClient::new(RetryUnavailable::new(channel, health_only));
        let status = client.check(HealthCheckRequest { service: String::new() }).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn retries_stay_within_a_tenth_of_the_calls() {
        // Always unavailable: every call would retry twice without a budget.
        let (port, calls) = flaky(u64::MAX).await;
        let channel = channel(&format!("http://127.0.0.1:{port}")).unwrap();
        let client = HealthClient::new(RetryUnavailable::new(channel, health_only).with_budget(1, RETRY_RATIO));
        futures::future::join_all((0..200).map(|_| {
            let mut client = client.clone();
            async move { client.check(HealthCheckRequest { service: String::new() }).await }
        }))
        .await;
        let retries = calls.load(Ordering::SeqCst) - 200;
        // A tenth of 200 calls, plus the reserve of one a second over the
        // budget's ten seconds.
        assert!(retries <= 20 + 10, "{retries} retries for 200 calls");
        assert!(retries > 0, "the budget still allows some");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unsafe_call_is_not_retried() {
        let (port, calls) = flaky(1).await;
        let channel = channel(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut client = HealthClient::new(RetryUnavailable::new(channel, nothing));
        let status = client.check(HealthCheckRequest { service: String::new() }).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_record_gets_no_calls() {
        let live = replica(0).await;
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // A record naming a dead address never enters the balancer: its
        // probe is refused.
        let records = Arc::new(Fake(Mutex::new(vec![
            SocketAddr::from(([127, 0, 0, 1], dead)),
            SocketAddr::from(([127, 0, 0, 1], live.port)),
        ])));
        let channel = resolved_channel(records, fast());
        let mut client = HealthClient::new(RetryUnavailable::new(channel, health_only));
        for _ in 0..50 {
            client.check(HealthCheckRequest { service: String::new() }).await.unwrap();
        }
        assert!(live.calls() >= 50);
    }
}
