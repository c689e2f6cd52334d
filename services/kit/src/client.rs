//! gRPC client channels between services: lazily connected (a peer that is
//! down at boot is not fatal), with keep-alives and W3C trace context
//! injected into every call.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::telemetry::TraceContextInjector;

/// The channel type every generated client is built on.
pub type GrpcChannel = InterceptedService<Channel, TraceContextInjector>;

#[derive(Debug, thiserror::Error)]
#[error("invalid gRPC address {address:?}: {source}")]
pub struct AddressError {
    address: String,
    source: tonic::transport::Error,
}

/// A channel to `address` (`http://host:port`), connected on first use.
pub fn channel(address: &str) -> Result<GrpcChannel, AddressError> {
    let endpoint = Endpoint::from_shared(address.to_owned())
        .map_err(|source| AddressError { address: address.to_owned(), source })?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    Ok(InterceptedService::new(endpoint.connect_lazy(), TraceContextInjector))
}
