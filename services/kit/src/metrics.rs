//! RED metrics (rate, errors, duration) for every gRPC method and HTTP route,
//! in the Prometheus text format on `/metrics`.
//!
//! Labels are code-defined names only: the gRPC service and method, the HTTP
//! method and matched route template (`/api/v1/bookings/{reference}`, never
//! the path), and the status. Nothing a citizen typed can reach a label.
//!
//! A process has one registry ([`Metrics::global`]). Several servers of one
//! process can keep apart (replicas started side by side in tests): servers
//! built inside [`scope`] record to the registry given there.

use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tonic::Code;
use tonic::body::Body;
use tower::BoxError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    service: String,
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcMethod {
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRoute {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    stream: &'static str,
}

type Age = prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>;

type Durations<L> = Family<L, Histogram, fn() -> Histogram>;

fn durations() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// A registry with the RED families. Cheap to clone; clones share counts.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    grpc_requests: Family<GrpcLabels, Counter>,
    grpc_errors: Family<GrpcLabels, Counter>,
    grpc_duration: Durations<GrpcMethod>,
    http_requests: Family<HttpLabels, Counter>,
    http_errors: Family<HttpLabels, Counter>,
    http_duration: Durations<HttpRoute>,
    panics: Counter,
    stream_age: Family<StreamLabels, Age>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

tokio::task_local! {
    static SCOPE: Metrics;
}

/// Runs `future` (typically a server's build) with `metrics` as the
/// registry servers built inside it record to.
pub async fn scope<F: std::future::Future>(metrics: Metrics, future: F) -> F::Output {
    SCOPE.scope(metrics, future).await
}

impl Metrics {
    /// A registry of its own.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let grpc_requests = Family::<GrpcLabels, Counter>::default();
        let grpc_errors = Family::<GrpcLabels, Counter>::default();
        let grpc_duration = Durations::<GrpcMethod>::new_with_constructor(durations as fn() -> Histogram);
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_errors = Family::<HttpLabels, Counter>::default();
        let http_duration = Durations::<HttpRoute>::new_with_constructor(durations as fn() -> Histogram);
        registry.register(
            "grpc_server_requests",
            "gRPC calls answered, by method and status code",
            grpc_requests.clone(),
        );
        registry.register(
            "grpc_server_errors",
            "gRPC calls that failed on the server's side (unknown, internal, unavailable, deadline, overload, cancelled)",
            grpc_errors.clone(),
        );
        registry.register("grpc_server_request_duration_seconds", "Time to answer a gRPC call", grpc_duration.clone());
        registry.register("http_server_requests", "HTTP requests answered, by route and status", http_requests.clone());
        registry.register("http_server_errors", "HTTP requests answered 5xx", http_errors.clone());
        registry.register(
            "http_server_request_duration_seconds",
            "Time to answer an HTTP request",
            http_duration.clone(),
        );
        let panics = Counter::default();
        registry.register(
            "handler_panics",
            "Requests whose handler panicked (answered as internal errors; the process and connection stay up)",
            panics.clone(),
        );
        let stream_age = Family::<StreamLabels, Age>::default();
        registry.register(
            "stream_age_seconds",
            "How old the state a stream subscriber serves from is (its last update or heartbeat)",
            stream_age.clone(),
        );
        Self(Arc::new(Inner {
            stream_age,
            panics,
            registry,
            grpc_requests,
            grpc_errors,
            grpc_duration,
            http_requests,
            http_errors,
            http_duration,
        }))
    }

    /// The process's registry.
    pub fn global() -> Self {
        static GLOBAL: OnceLock<Metrics> = OnceLock::new();
        GLOBAL.get_or_init(Metrics::new).clone()
    }

    /// The registry of the enclosing [`scope`], else the global one.
    pub fn current() -> Self {
        SCOPE.try_with(Clone::clone).unwrap_or_else(|_| Self::global())
    }

    pub fn record_panic(&self) {
        self.0.panics.inc();
    }

    pub fn set_stream_age(&self, stream: &'static str, age: Duration) {
        self.0.stream_age.get_or_create(&StreamLabels { stream }).set(age.as_secs_f64());
    }

    pub fn panics(&self) -> u64 {
        self.0.panics.get()
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.0.registry).is_err() {
            let _ = writeln!(out, "# encoding failed");
        }
        out
    }

    pub fn observe_grpc(&self, service: &str, method: &str, code: Code, elapsed: Duration) {
        let labels = GrpcLabels { service: service.to_owned(), method: method.to_owned(), code: code_name(code) };
        self.0.grpc_requests.get_or_create(&labels).inc();
        if is_server_error(code) {
            self.0.grpc_errors.get_or_create(&labels).inc();
        }
        let method = GrpcMethod { service: labels.service, method: labels.method };
        self.0.grpc_duration.get_or_create(&method).observe(elapsed.as_secs_f64());
    }

    pub fn observe_http(&self, method: &http::Method, route: &str, status: u16, elapsed: Duration) {
        let method = method_name(method);
        let labels = HttpLabels { method, route: route.to_owned(), status };
        self.0.http_requests.get_or_create(&labels).inc();
        if status >= 500 {
            self.0.http_errors.get_or_create(&labels).inc();
        }
        self.0.http_duration.get_or_create(&HttpRoute { method, route: labels.route }).observe(elapsed.as_secs_f64());
    }

    /// Calls of one gRPC method answered with `code`.
    pub fn grpc_count(&self, service: &str, method: &str, code: Code) -> u64 {
        let labels = GrpcLabels { service: service.to_owned(), method: method.to_owned(), code: code_name(code) };
        self.0.grpc_requests.get(&labels).map_or(0, |c| c.get())
    }

    /// Calls of one gRPC method, whatever their status.
    pub fn grpc_total(&self, service: &str, method: &str) -> u64 {
        ALL_CODES.iter().map(|code| self.grpc_count(service, method, *code)).sum()
    }

    /// Failed calls of one gRPC method (see [`is_server_error`]).
    pub fn grpc_errors(&self, service: &str, method: &str) -> u64 {
        ALL_CODES
            .iter()
            .map(|code| {
                let labels =
                    GrpcLabels { service: service.to_owned(), method: method.to_owned(), code: code_name(*code) };
                self.0.grpc_errors.get(&labels).map_or(0, |c| c.get())
            })
            .sum()
    }

    /// HTTP requests to one route template answered with `status`.
    pub fn http_count(&self, method: &http::Method, route: &str, status: u16) -> u64 {
        let labels = HttpLabels { method: method_name(method), route: route.to_owned(), status };
        self.0.http_requests.get(&labels).map_or(0, |c| c.get())
    }
}

const ALL_CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// The codes that say the server failed, as opposed to refusing a request
/// that was wrong (invalid, not found, already exists, precondition).
pub fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Cancelled
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

// ---- HTTP -----------------------------------------------------------------

/// `/metrics` in the Prometheus text format, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>(metrics: Metrics) -> Router<S> {
    Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                    metrics.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// Middleware (`axum::middleware::from_fn_with_state(metrics, metrics::track_http)`)
/// counting each request under its matched route template. Put it on the
/// router with `Router::layer`, where the route is known.
pub async fn track_http(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe_http(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

// ---- gRPC -----------------------------------------------------------------

/// Records every call of a gRPC server: its method (for the services the
/// server has; anything else is `unknown`), its final status (read from
/// the trailers), and its time until the trailers are sent.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    metrics: Metrics,
    services: Arc<[&'static str]>,
}

impl GrpcMetricsLayer {
    pub fn new(metrics: Metrics, services: impl IntoIterator<Item = &'static str>) -> Self {
        Self { metrics, services: services.into_iter().collect() }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

/// One call being answered; recorded once, when its status is known or,
/// failing that, when it is dropped (the caller went away or the deadline
/// passed: `CANCELLED`, as tonic answers a server timeout).
struct Call {
    metrics: Metrics,
    service: &'static str,
    method: String,
    start: Instant,
    code: Option<Code>,
}

impl Call {
    fn record(&mut self, code: Code) {
        self.code = Some(code);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        let method = if code == Code::Unimplemented { "unknown" } else { self.method.as_str() };
        self.metrics.observe_grpc(self.service, method, code, self.start.elapsed());
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    headers.get("grpc-status").map(|value| Code::from_bytes(value.as_bytes()))
}

impl<S, B> tower::Service<http::Request<Body>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (service, method) = request
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .and_then(|(service, method)| {
                self.layer.services.iter().find(|known| **known == service).map(|known| (*known, method))
            })
            .unwrap_or(("unknown", "unknown"));
        let mut call = Call {
            metrics: self.layer.metrics.clone(),
            service,
            method: method.to_owned(),
            start: Instant::now(),
            code: None,
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            match future.await {
                Ok(response) => {
                    // A trailers-only answer (an error) has its status here.
                    call.code = status_of(response.headers());
                    Ok(response.map(|body| Body::new(Observed { inner: body, call: Some(call) })))
                }
                Err(error) => {
                    let error = error.into();
                    // Shed by the load limit; nothing else in the stack fails.
                    call.record(if error.is::<tower::load_shed::error::Overloaded>() {
                        Code::ResourceExhausted
                    } else {
                        Code::Unknown
                    });
                    Err(error)
                }
            }
        })
    }
}

/// A response body that reads the status from the trailers as they pass.
struct Observed<B> {
    inner: B,
    call: Option<Call>,
}

impl<B> HttpBody for Observed<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of)
                    && let Some(call) = &mut self.call
                {
                    call.code = Some(code);
                    self.call = None;
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = &mut self.call {
                    call.code = Some(Code::Unknown);
                }
                self.call = None;
            }
            Poll::Ready(None) => {
                if let Some(call) = &mut self.call
                    && call.code.is_none()
                {
                    call.code = Some(Code::Unknown);
                }
                self.call = None;
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders_without_personal_data() {
        let metrics = Metrics::new();
        metrics.observe_grpc("creneau.slot_inventory.v1.SlotInventory", "Book", Code::Ok, Duration::from_millis(3));
        metrics.observe_grpc(
            "creneau.slot_inventory.v1.SlotInventory",
            "Book",
            Code::Internal,
            Duration::from_millis(9),
        );
        metrics.observe_grpc("creneau.slot_inventory.v1.SlotInventory", "Book", Code::AlreadyExists, Duration::ZERO);
        metrics.observe_http(&http::Method::GET, "/api/v1/bookings/{reference}", 404, Duration::from_millis(1));
        metrics.observe_http(&http::Method::POST, "/api/v1/bookings", 503, Duration::from_millis(1));
        assert_eq!(metrics.grpc_total("creneau.slot_inventory.v1.SlotInventory", "Book"), 3);
        assert_eq!(metrics.grpc_errors("creneau.slot_inventory.v1.SlotInventory", "Book"), 1);
        assert_eq!(metrics.http_count(&http::Method::GET, "/api/v1/bookings/{reference}", 404), 1);
        let text = metrics.render();
        for expected in [
            r#"grpc_server_requests_total{service="creneau.slot_inventory.v1.SlotInventory",method="Book",code="OK"} 1"#,
            r#"grpc_server_errors_total{service="creneau.slot_inventory.v1.SlotInventory",method="Book",code="INTERNAL"} 1"#,
            r#"grpc_server_request_duration_seconds_count{service="creneau.slot_inventory.v1.SlotInventory",method="Book"} 3"#,
            r#"http_server_requests_total{method="GET",route="/api/v1/bookings/{reference}",status="404"} 1"#,
            r#"http_server_errors_total{method="POST",route="/api/v1/bookings",status="503"} 1"#,
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }

    #[tokio::test]
    async fn scopes_keep_registries_apart() {
        let mine = Metrics::new();
        let seen = scope(mine.clone(), async { Metrics::current() }).await;
        seen.observe_grpc("s", "m", Code::Ok, Duration::ZERO);
        assert_eq!(mine.grpc_total("s", "m"), 1);
        assert_eq!(Metrics::current().grpc_total("s", "m"), Metrics::global().grpc_total("s", "m"));
    }
}
