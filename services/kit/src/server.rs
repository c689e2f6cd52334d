//! The gRPC server every service runs: its API plus `grpc.health.v1`
//! (reporting real readiness) and, for public APIs, reflection, behind one
//! tower stack built here and nowhere else.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{Service, ServiceBuilder};

use crate::ServerSettings;

/// Answers whether the service can do its work right now (database
/// reachable, schema migrated). Polled; the answer drives health.
pub type ReadinessCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

const READINESS_INTERVAL: Duration = Duration::from_secs(2);

pub struct GrpcServer {
    listener: TcpListener,
    settings: ServerSettings,
    routes: RoutesBuilder,
    health: HealthReporter,
    names: Vec<&'static str>,
    readiness: Option<ReadinessCheck>,
}

impl GrpcServer {
    /// Binds now, so the real port is known before serving (port 0 in tests).
    pub async fn bind(settings: &ServerSettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.address()).await?;
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        Ok(Self { listener, settings: settings.clone(), routes, health, names: Vec::new(), readiness: None })
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

    /// Serves reflection for the given encoded file descriptor set.
    pub fn with_reflection(mut self, file_descriptor_set: &'static [u8]) -> Self {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(file_descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("descriptor sets compiled into the binary are valid");
        self.routes.add_service(reflection);
        self
    }

    pub fn with_readiness(mut self, check: ReadinessCheck) -> Self {
        self.readiness = Some(check);
        self
    }

    /// Serves until `shutdown` resolves, then reports NOT_SERVING, stops
    /// accepting, and gives in-flight calls the grace period to finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self { listener, settings, routes, health, names, readiness } = self;
        let addr = listener.local_addr()?;
        let watcher = tokio::spawn(watch_readiness(health.clone(), names.clone(), readiness));

        // Outermost first: requests beyond the global limit are shed at once
        // (RESOURCE_EXHAUSTED) instead of queueing into a timeout; the
        // timeout itself is tonic's, so it maps to DEADLINE_EXCEEDED.
        let limits =
            ServiceBuilder::new().load_shed().layer(GlobalConcurrencyLimitLayer::new(settings.concurrency_limit));
        let server = tonic::transport::Server::builder()
            .timeout(settings.request_timeout())
            .tcp_nodelay(true)
            .trace_fn(|request| {
                let span = tracing::info_span!(
                    "grpc.request",
                    otel.kind = "server",
                    rpc.method = %request.uri().path()
                );
                crate::telemetry::set_remote_parent(&span, request.headers());
                span
            })
            .layer(limits)
            .add_routes(routes.routes());

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = server.serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
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
        tracing::info!(%addr, "gRPC server stopped");
        result
    }
}

async fn watch_readiness(health: HealthReporter, names: Vec<&'static str>, readiness: Option<ReadinessCheck>) {
    let mut last: Option<bool> = None;
    loop {
        let ready = match &readiness {
            None => Ok(()),
            Some(check) => check().await,
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
