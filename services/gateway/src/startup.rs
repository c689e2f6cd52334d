//! The HTTP server: routes, and the one tower stack that protects them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::trace::TraceLayer;

use crate::backends::Backends;
use crate::problem::{Problem, ProblemKind};
use crate::queue::live::Room;
use crate::queue::store::Store;
use crate::routes::{bookings, centres, eligibility, health, holds, home, open_data, queue};
use crate::settings::{Config, Settings};
use creneau_kit::entrypoint::ServiceSettings;

pub const SERVICE: &str = "gateway";

#[derive(Clone)]
pub struct AppState {
    pub backends: Backends,
    pub feed: open_data::FeedCache,
    /// The waiting room, when it is on.
    pub room: Option<Arc<Room>>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    grace_period: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::from_config(settings.parse().map_err(anyhow::Error::msg)?).await
    }

    pub async fn from_config(config: Config) -> anyhow::Result<Self> {
        let backends = Backends::connect(&config);
        let listener = TcpListener::bind(config.server.address())
            .await
            .with_context(|| format!("binding {}", config.server.address()))?;
        let room = match &config.queue {
            None => None,
            Some((queue, database)) => {
                let db = creneau_kit::db::connect(database).await.context("connecting to the gateway's database")?;
                Some(Arc::new(Room::new(queue.clone(), Store::new(db))))
            }
        };
        let state = AppState { backends, feed: open_data::FeedCache::default(), room };
        Ok(Self { listener, router: router(&config, state.clone()), state, grace_period: config.server.grace_period() })
    }

    /// The waiting room, when it is on.
    pub fn room(&self) -> Option<Arc<Room>> {
        self.state.room.clone()
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("bound listener").port()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(creneau_kit::shutdown::signal()).await
    }

    /// Serves until `shutdown`, then stops accepting and lets in-flight
    /// requests finish within the grace period.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, "HTTP gateway listening");
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        use axum::serve::ListenerExt;
        // Without it, an answer written in two parts waits for the client's
        // delayed acknowledgement: 40 ms added to a request of a millisecond.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY refused");
            }
        });
        let app = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        });
        let grace = self.grace_period;
        let room = self.state.room.clone();
        let _stop_room =
            room.clone().map(|room| AbortOnDrop(tokio::spawn(keep_room(room, self.state.backends.clone()))));
        let feed = tokio::spawn(open_data::keep_built(self.state));
        let _stop_feed = AbortOnDrop(feed);
        let serving = tokio::spawn(async move { serve.await });
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => return Ok(result??),
            _ = stopping_rx => {}
        }
        let served = match tokio::time::timeout(grace, serving).await {
            Ok(result) => result?,
            Err(_) => {
                tracing::warn!("grace period over with requests still in flight");
                Ok(())
            }
        };
        if let Some(room) = room {
            room.stop().await;
        }
        Ok(served?)
    }
}

/// The room's second-by-second shared work, for as long as the server runs.
async fn keep_room(room: Arc<Room>, backends: Backends) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        room.tick(&backends, chrono::Utc::now()).await;
    }
}

/// The waiting room's own routes, answered from memory.
fn queue_routes(state: &AppState) -> Router<AppState> {
    let Some(room) = &state.room else { return Router::new() };
    Router::new()
        .route("/api/v1/queue", get(queue::overview).post(queue::join))
        .route("/api/v1/queue/challenge", get(queue::challenge))
        .route("/api/v1/queue/status", get(queue::status))
        .with_state(room.clone())
}

/// Background work that ends with the server, however it returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn router(config: &Config, state: AppState) -> Router {
    // The funnel: behind a pass while the room is on.
    let funnel = Router::new()
        .route("/api/v1/eligibility", post(eligibility::check))
        .route("/api/v1/centres", get(centres::search))
        .route("/api/v1/centres/{id}", get(centres::get))
        .route("/api/v1/centres/{id}/slots", get(centres::slots))
        .route("/api/v1/bookings", post(bookings::create))
        .route("/api/v1/holds", post(holds::create));
    let funnel = match &state.room {
        Some(room) => funnel.route_layer(axum::middleware::from_fn_with_state(room.clone(), queue::require_pass)),
        None => funnel,
    };
    let api = Router::new()
        .merge(funnel)
        .route("/api/v1/bookings/{reference}", get(bookings::get).delete(bookings::cancel).patch(bookings::reschedule))
        .route("/api/v1/holds/{id}", delete(holds::release))
        .route("/api/v1/open-data/$bulk-publish", get(open_data::manifest))
        .route("/api/v1/open-data/locations.ndjson", get(open_data::locations))
        .route("/api/v1/open-data/schedules.ndjson", get(open_data::schedules))
        .route("/api/v1/open-data/slots.ndjson", get(open_data::slots))
        .route("/", get(home::index))
        .merge(queue_routes(&state))
        .fallback(not_found)
        // Outermost first: over the concurrency limit a request is refused
        // at once (503 + Retry-After) instead of queueing into a timeout;
        // the timeout bounds what is admitted.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(config.server.concurrency_limit))
                .timeout(config.server.request_timeout()),
        )
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let api = match &state.room {
        Some(room) => api.layer(axum::middleware::from_fn_with_state(room.clone(), queue::meter)),
        None => api,
    };
    // Probes and metrics stay outside the limits: an overloaded gateway is
    // still alive, and says so. Metrics count every route, refusals from the
    // limits included; the trace span wraps it all.
    let metrics = creneau_kit::metrics::Metrics::current();
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(creneau_kit::metrics::router(metrics.clone()))
        .merge(api)
        .with_state(state)
        // Inside the metrics: a panicking handler is a 500 like any other,
        // and counted as a panic too.
        .layer(catch_panics(metrics.clone()))
        // Only answers that say so may be kept by a cache: bookings, holds,
        // attestations and problems carry personal data or are one person's.
        .layer(tower_http::set_header::SetResponseHeaderLayer::if_not_present(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        ))
        .layer(axum::middleware::from_fn_with_state(metrics, creneau_kit::metrics::track_http))
        .layer(TraceLayer::new_for_http().on_failure(log_failure).make_span_with(|request: &Request| {
            // The route template, never the URI: query strings can hold
            // places people live.
            let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
            let span = tracing::info_span!(
                "http.request",
                otel.kind = "server",
                http.method = %request.method(),
                http.route = %route,
                trace_id = tracing::field::Empty,
            );
            creneau_kit::telemetry::set_remote_parent(&span, request.headers());
            span
        }))
}

/// 503 and 504 are the gateway refusing or bounding work it cannot do in
/// time: expected in a rush, counted by the metrics, and not worth a line
/// each (a crowd would turn them into a flood of logs that costs the CPU
/// the gateway needs). Other failures are errors.
fn log_failure(failure: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    match failure {
        ServerErrorsFailureClass::StatusCode(code)
            if code == StatusCode::SERVICE_UNAVAILABLE || code == StatusCode::GATEWAY_TIMEOUT => {}
        failure => tracing::error!(%failure, latency_ms = latency.as_millis() as u64, "response failed"),
    }
}

async fn overloaded(error: tower::BoxError) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        Problem::new(ProblemKind::Timeout, "the request took too long; please retry").into_response()
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        Problem::new(ProblemKind::Unavailable, "too many requests right now; please retry in a moment").into_response()
    } else {
        tracing::error!(%error, "middleware error");
        Problem::new(ProblemKind::Internal, "an internal error occurred").into_response()
    }
}

/// A handler that panics answers 500 problem+json; the connection, the
/// other requests on it and the process carry on.
pub fn catch_panics(metrics: creneau_kit::metrics::Metrics) -> tower_http::catch_panic::CatchPanicLayer<PanicAnswer> {
    tower_http::catch_panic::CatchPanicLayer::custom(PanicAnswer(metrics))
}

#[derive(Clone)]
pub struct PanicAnswer(creneau_kit::metrics::Metrics);

impl tower_http::catch_panic::ResponseForPanic for PanicAnswer {
    type ResponseBody = axum::body::Body;

    fn response_for_panic(
        &mut self,
        _panic: Box<dyn std::any::Any + Send + 'static>,
    ) -> http::Response<Self::ResponseBody> {
        self.0.record_panic();
        tracing::error!("handler panicked");
        Problem::new(ProblemKind::Internal, "an internal error occurred").into_response()
    }
}

async fn not_found() -> Problem {
    Problem::new(ProblemKind::NotFound, "no such resource")
}
