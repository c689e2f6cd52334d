//! The gRPC server every service runs: its API plus `grpc.health.v1`
//! (reporting real readiness) and, for public APIs, reflection, behind one
//! tower stack built here and nowhere else.
//!
//! Health answers two questions, outside every limit: the service named
//! [`LIVENESS`] is SERVING for as long as the process runs (Kubernetes'
//! liveness probe: restart only a process that is stuck, never one that is
//! busy or whose database blipped); the empty name and each API's name
//! are SERVING while the service can do its work (readiness: database
//! reachable, migrations applied).

mod layers;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{Service, ServiceBuilder};

/// The health service name the liveness probe asks about.
pub const LIVENESS: &str = "liveness";

use crate::ServerSettings;
use crate::metrics::{GrpcMetricsLayer, Metrics};

/// Answers whether the service can do its work right now (database
/// reachable, schema migrated). Polled; the answer drives health.
pub type ReadinessCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

const READINESS_INTERVAL: Duration = Duration::from_secs(2);
const READINESS_TIMEOUT: Duration = Duration::from_secs(3);

pub struct GrpcServer {
    listener: TcpListener,
    settings: ServerSettings,
    routes: RoutesBuilder,
    health: HealthReporter,
    names: Vec<&'static str>,
    /// Health and reflection: counted under their names too.
    infrastructure: Vec<&'static str>,
    readiness: Option<ReadinessCheck>,
    conditions: Vec<(&'static str, ReadinessCheck)>,
    metrics: Metrics,
    admin: Option<TcpListener>,
}

impl GrpcServer {
    /// Binds now, so the real port is known before serving (port 0 in tests).
    /// Records metrics to the registry of the enclosing
    /// [`crate::metrics::scope`], else the process's.
    pub async fn bind(settings: &ServerSettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.address()).await?;
        let admin = match settings.metrics_port {
            Some(port) => Some(TcpListener::bind((settings.host.as_str(), port)).await?),
            None => None,
        };
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_service_status(LIVENESS, ServingStatus::Serving).await;
        // Not ready until the first readiness check says so.
        health.set_service_status("", ServingStatus::NotServing).await;
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        Ok(Self {
            listener,
            settings: settings.clone(),
            routes,
            health,
            names: Vec::new(),
            infrastructure: vec!["grpc.health.v1.Health"],
            readiness: None,
            conditions: Vec::new(),
            metrics: Metrics::current(),
            admin,
        })
    }

    /// The registry this server records its calls to.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Serves `GET /metrics` (Prometheus text) on a small HTTP listener of
    /// its own, bound now, beside the gRPC port; it stops with the server.
    pub async fn with_metrics_listener(mut self, address: SocketAddr) -> std::io::Result<Self> {
        self.admin = Some(TcpListener::bind(address).await?);
        Ok(self)
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|admin| admin.local_addr().ok())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Error = Infallible> + NamedService + Clone + Send + Sync + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Serves reflection for the given encoded file descriptor sets (the
    /// service's API, and the operator services it serves beside it).
    pub fn with_reflection(mut self, file_descriptor_sets: impl IntoIterator<Item = &'static [u8]>) -> Self {
        let builder = file_descriptor_sets.into_iter().fold(
            tonic_reflection::server::Builder::configure(),
            tonic_reflection::server::Builder::register_encoded_file_descriptor_set,
        );
        let reflection = builder
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("descriptor sets compiled into the binary are valid");
        self.infrastructure.push(name_of(&reflection));
        self.routes.add_service(reflection);
        self
    }

    /// A named health status of its own (`name` in the health service),
    /// checked with readiness but leaving it alone: a part of the service
    /// that can be degraded while the rest keeps answering.
    pub fn with_condition(mut self, name: &'static str, check: ReadinessCheck) -> Self {
        self.conditions.push((name, check));
        self
    }

    pub fn with_readiness(mut self, check: ReadinessCheck) -> Self {
        self.readiness = Some(check);
        self
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, stops
    /// accepting, and gives in-flight calls the grace period to finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self { listener, settings, routes, health, names, infrastructure, readiness, conditions, metrics, admin } =
            self;
        let addr = listener.local_addr()?;
        for name in &names {
            health.set_service_status(*name, ServingStatus::NotServing).await;
        }
        let watcher = tokio::spawn(watch_readiness(health.clone(), names.clone(), readiness));
        let conditions: Vec<_> = conditions
            .into_iter()
            .map(|(name, check)| tokio::spawn(watch_condition(health.clone(), name, check)))
            .collect();
        let (admin_stop, admin_task) = match admin {
            Some(admin) => {
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let router: axum::Router = crate::metrics::router(metrics.clone());
                tracing::info!(addr = %admin.local_addr()?, "metrics listening");
                let task = tokio::spawn(async move {
                    let _ = axum::serve(admin, router)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
                (Some(stop), Some(task))
            }
            None => (None, None),
        };

        // Outermost first: metrics see every call, shed ones included;
        // health checks go around the limits; other requests beyond the
        // global limit are shed at once (RESOURCE_EXHAUSTED) instead of
        // queueing into a timeout, then run with their deadline known to
        // the database layer, and a panic among them answers INTERNAL. The
        // timeout itself is tonic's, outside these layers.
        let services = names.iter().chain(&infrastructure).copied().collect::<Vec<_>>();
        let limit = GlobalConcurrencyLimitLayer::new(settings.concurrency_limit);
        let timeout = settings.request_timeout();
        let panics = metrics.clone();
        let limits = ServiceBuilder::new()
            .layer(GrpcMetricsLayer::new(metrics, services))
            .layer_fn(move |routes| layers::protect(routes, &limit, timeout, panics.clone()));
        let server = tonic::transport::Server::builder()
            .timeout(settings.request_timeout())
            .tcp_nodelay(true)
            // Callers cancel calls whose own clients went away, by the
            // thousand in a rush, often before a saturated server has even
            // accepted the stream. h2's default (20 such resets, then the
            // whole connection is torn down, every call on it failing) is a
            // guard against floods from strangers; these callers are ours.
            .http2_max_pending_accept_reset_streams(Some(settings.concurrency_limit))
            .trace_fn(|request| {
                // The path is a method name, never data.
                let span = tracing::info_span!(
                    "grpc.request",
                    otel.kind = "server",
                    rpc.method = %request.uri().path(),
                    trace_id = tracing::field::Empty,
                );
                crate::telemetry::set_remote_parent(&span, request.headers());
                span
            })
            .layer(limits)
            .add_routes(routes.routes());

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // tonic's own TCP_NODELAY applies to listeners it binds, not to
        // ours: without it a reply written in two parts waits for the
        // caller's delayed acknowledgement, 40 ms on every call.
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let serving = server.serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
        tokio::pin!(serving);
        tracing::info!(%addr, services = ?names, "gRPC server listening");

        let result = tokio::select! {
            result = &mut serving => result.map_err(anyhow::Error::from),
            () = shutdown => {
                watcher.abort();
                for name in &names {
                    health.set_service_status(*name, ServingStatus::NotServing).await;
                }
                health.set_service_status("", ServingStatus::NotServing).await;
                let _ = stop_tx.send(());
                match tokio::time::timeout(settings.grace_period(), &mut serving).await {
                    Ok(result) => result.map_err(anyhow::Error::from),
                    Err(_) => {
                        tracing::warn!("grace period over with calls still in flight");
                        Ok(())
                    }
                }
            }
        };
        watcher.abort();
        for condition in conditions {
            condition.abort();
        }
        if let Some(stop) = admin_stop {
            let _ = stop.send(());
        }
        if let Some(task) = admin_task {
            let _ = task.await;
        }
        tracing::info!(%addr, "gRPC server stopped");
        result
    }
}

fn name_of<S: NamedService>(_: &S) -> &'static str {
    S::NAME
}

async fn watch_condition(health: HealthReporter, name: &'static str, check: ReadinessCheck) {
    let mut last: Option<bool> = None;
    loop {
        let now = tokio::time::timeout(READINESS_TIMEOUT, check())
            .await
            .unwrap_or_else(|_| Err("the check timed out".to_owned()));
        if last != Some(now.is_ok()) {
            match &now {
                Ok(()) => tracing::info!(condition = name, "serving"),
                Err(why) => tracing::warn!(condition = name, %why, "degraded"),
            }
            let status = if now.is_ok() { ServingStatus::Serving } else { ServingStatus::NotServing };
            health.set_service_status(name, status).await;
            last = Some(now.is_ok());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn watch_readiness(health: HealthReporter, names: Vec<&'static str>, readiness: Option<ReadinessCheck>) {
    let mut last: Option<bool> = None;
    loop {
        // A database whose packets are dropped would hang the check and
        // freeze the last answer: past the timeout, not ready.
        let ready = match &readiness {
            None => Ok(()),
            Some(check) => tokio::time::timeout(READINESS_TIMEOUT, check())
                .await
                .unwrap_or_else(|_| Err("the readiness check timed out".to_owned())),
        };
        let is_ready = ready.is_ok();
        if last != Some(is_ready) {
            match &ready {
                Ok(()) => tracing::info!("ready"),
                Err(why) => tracing::warn!(%why, "not ready"),
            }
            let status = if is_ready { ServingStatus::Serving } else { ServingStatus::NotServing };
            health.set_service_status("", status).await;
            for name in &names {
                health.set_service_status(*name, status).await;
            }
            last = Some(is_ready);
        }
        tokio::time::sleep(READINESS_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;

    use super::*;

    async fn channel(port: u16) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await.unwrap()
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    /// A service whose every method panics.
    #[derive(Clone)]
    struct Panicker;

    impl tonic::server::NamedService for Panicker {
        const NAME: &'static str = "test.Panicker";
    }

    impl Service<http::Request<Body>> for Panicker {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            if request.uri().path().ends_with("/Now") {
                panic!("a handler bug, before any await");
            }
            Box::pin(async { panic!("a handler bug, mid-request") })
        }
    }

    async fn call(channel: tonic::transport::Channel, method: &'static str) -> Result<(), tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::from_static(method);
        grpc.unary(tonic::Request::new(()), path, tonic_prost::ProstCodec::<(), ()>::default()).await.map(|_| ())
    }

    async fn serving(
        server: GrpcServer,
    ) -> (u16, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let port = server.local_addr().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        (port, stop, task)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_handler_answers_internal_and_the_connection_carries_on() {
        let metrics = Metrics::new();
        let server = GrpcServer::bind(&ServerSettings::local(0))
            .await
            .unwrap()
            .with_metrics(metrics.clone())
            .add_service(Panicker);
        let (port, stop, task) = serving(server).await;
        let connection = channel(port).await;
        for method in ["/test.Panicker/Later", "/test.Panicker/Now", "/test.Panicker/Later"] {
            let status = call(connection.clone(), method).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::Internal, "{method}: {status:?}");
            assert_eq!(status.message(), "internal error");
        }
        assert_eq!(metrics.panics(), 3);
        assert_eq!(metrics.grpc_count("test.Panicker", "Later", tonic::Code::Internal), 2);
        // The same connection still serves.
        let mut health = HealthClient::new(connection);
        health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn probes_are_answered_beyond_the_limit_and_liveness_ignores_readiness() {
        // One call at a time, and a database that is never reachable.
        let settings = ServerSettings { concurrency_limit: 1, ..ServerSettings::local(0) };
        let never: ReadinessCheck = Arc::new(|| Box::pin(async { Err("database unreachable".to_owned()) }));
        let entered = Arc::new(tokio::sync::Notify::new());
        let slow = Slow(entered.clone());
        let server = GrpcServer::bind(&settings).await.unwrap().add_service(slow).with_readiness(never);
        let (port, stop, task) = serving(server).await;
        let connection = channel(port).await;
        // The one place is taken by a call that does not end.
        let busy = tokio::spawn(call(connection.clone(), "/test.Slow/Wait"));
        entered.notified().await;
        let shed = tokio::time::timeout(Duration::from_secs(10), call(connection.clone(), "/test.Slow/Wait"))
            .await
            .expect("the second call is shed at once, not queued")
            .unwrap_err();
        assert_eq!(shed.code(), tonic::Code::ResourceExhausted, "the API is shed beyond the limit");

        let mut health = HealthClient::new(connection);
        for _ in 0..20 {
            let alive = health.check(HealthCheckRequest { service: LIVENESS.into() }).await.unwrap();
            assert_eq!(alive.into_inner().status, ServingStatus::Serving as i32, "alive, however busy");
        }
        let ready = health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
        assert_eq!(ready.into_inner().status, ServingStatus::NotServing as i32, "not ready without its database");
        busy.abort();
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }

    /// A service whose calls say they have begun, then wait for ever.
    #[derive(Clone)]
    struct Slow(Arc<tokio::sync::Notify>);

    impl tonic::server::NamedService for Slow {
        const NAME: &'static str = "test.Slow";
    }

    impl Service<http::Request<Body>> for Slow {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: http::Request<Body>) -> Self::Future {
            self.0.notify_one();
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_metrics_port_setting_opens_the_listener() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let settings = ServerSettings { metrics_port: Some(free), ..ServerSettings::local(0) };
        let server = GrpcServer::bind(&settings).await.unwrap();
        assert_eq!(server.metrics_addr().map(|a| a.port()), Some(free));
        let plain = GrpcServer::bind(&ServerSettings::local(0)).await.unwrap();
        assert_eq!(plain.metrics_addr(), None);
    }

    #[tokio::test]
    async fn calls_are_counted_and_served_on_the_metrics_listener() {
        let metrics = Metrics::new();
        let server = GrpcServer::bind(&ServerSettings::local(0))
            .await
            .unwrap()
            .with_metrics(metrics.clone())
            .with_metrics_listener("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (port, admin) = (server.local_addr().port(), server.metrics_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));

        let mut health = HealthClient::new(channel(port).await);
        for _ in 0..3 {
            health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
        }
        let unknown = health.check(HealthCheckRequest { service: "nope".into() }).await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
        // A service this server does not have.
        let mut reflection = ServerReflectionClient::new(channel(port).await);
        let missing = reflection.server_reflection_info(tokio_stream::iter(Vec::new())).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unimplemented);

        assert_eq!(metrics.grpc_count("grpc.health.v1.Health", "Check", tonic::Code::Ok), 3);
        assert_eq!(metrics.grpc_count("grpc.health.v1.Health", "Check", tonic::Code::NotFound), 1);
        assert_eq!(metrics.grpc_errors("grpc.health.v1.Health", "Check"), 0);
        assert_eq!(metrics.grpc_count("unknown", "unknown", tonic::Code::Unimplemented), 1);

        let page = get(admin, "/metrics").await;
        assert!(page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(
            page.contains(r#"grpc_server_requests_total{service="grpc.health.v1.Health",method="Check",code="OK"} 3"#),
            "{page}"
        );
        assert!(!page.contains("ServerReflection"), "unknown paths stay out of labels");

        let _ = stop.send(());
        serving.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(admin).await.is_err(), "the metrics listener stops with the server");
    }
}
