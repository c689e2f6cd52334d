//! The tower layers of every gRPC server, below the metrics: probes go
//! around the limits; everything else is shed beyond the concurrency
//! limit, runs under its deadline, and has its panics turned into an
//! answer.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tonic::body::Body;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShed;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use crate::metrics::Metrics;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The path prefix of `grpc.health.v1`: probes.
const HEALTH: &str = "/grpc.health.v1.Health/";

/// Health checks skip the limits: a kubelet polling a saturated replica
/// must hear that it is alive (and ready, if it is), not be shed with the
/// crowd and restart it.
#[derive(Clone)]
pub struct Protected<S> {
    probes: S,
    limited: LoadShed<tower::limit::ConcurrencyLimit<Deadlines<CatchPanic<S>>>>,
}

pub fn protect<S>(routes: S, limit: &GlobalConcurrencyLimitLayer, timeout: Duration, metrics: Metrics) -> Protected<S>
where
    S: Clone,
{
    let limited = ServiceBuilder::new()
        .load_shed()
        .layer(limit.clone())
        .layer_fn(|inner| Deadlines { inner, timeout })
        .service(CatchPanic { inner: routes.clone(), metrics });
    Protected { probes: routes, limited }
}

impl<S> Service<http::Request<Body>> for Protected<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    /// Always ready: each call is routed, then readied on its own path.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path().starts_with(HEALTH) {
            let call = self.probes.clone().oneshot(request);
            Box::pin(async move { call.await.map_err(BoxError::from) })
        } else {
            Box::pin(self.limited.clone().oneshot(request))
        }
    }
}

/// Runs each call with its deadline set (see [`crate::deadline`]): the
/// caller's `grpc-timeout`, bounded by the server's request timeout.
#[derive(Clone)]
pub struct Deadlines<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Service<http::Request<Body>> for Deadlines<S>
where
    S: Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tokio::task::futures::TaskLocalFuture<Instant, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let asked = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::deadline::parse_grpc_timeout);
        let timeout = asked.map_or(self.timeout, |asked| asked.min(self.timeout));
        crate::deadline::within(Instant::now() + timeout, self.inner.call(request))
    }
}

/// A handler that panics answers INTERNAL and is counted; the connection
/// and every other call on it carry on.
#[derive(Clone)]
pub struct CatchPanic<S> {
    inner: S,
    metrics: Metrics,
}

impl<S> Service<http::Request<Body>> for CatchPanic<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let answer_panic = move || {
            metrics.record_panic();
            // The path names a method, never data.
            tracing::error!(rpc.method = %path, "handler panicked");
            Ok(tonic::Status::internal("internal error").into_http())
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(call) => Box::pin(async move {
                match AssertUnwindSafe(call).catch_unwind().await {
                    Ok(answer) => answer,
                    Err(_) => answer_panic(),
                }
            }),
            Err(_) => Box::pin(std::future::ready(answer_panic())),
        }
    }
}
