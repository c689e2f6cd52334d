//! Logs and traces. Logs go to stdout (JSON in production); spans are
//! exported over OTLP when an endpoint is configured. W3C trace context is
//! injected into outgoing gRPC metadata and extracted from incoming headers,
//! so one booking is one trace across services. JSON log lines carry the
//! trace id of the request they belong to (the `trace_id` field of its
//! `http.request` / `grpc.request` span).

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry::{Context, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter::LevelFilter};

use crate::settings::{LogFormat, TelemetrySettings};

/// Keeps the span exporter alive; flushes it on `shutdown`.
#[must_use = "dropping the guard stops span export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered. Blocks: call it off the runtime's
    /// threads (`spawn_blocking`).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.force_flush()
        {
            eprintln!("span export flush failed: {error}");
        }
    }

    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("span exporter shutdown failed: {error}");
        }
    }
}

/// Installs the global subscriber. Fails if one is already installed.
pub fn init(service: &'static str, settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let (subscriber, telemetry) = subscriber(service, settings, std::io::stdout)?;
    subscriber.try_init()?;
    Ok(telemetry)
}

/// The subscriber [`init`] installs, with logs written to `writer`: tests
/// capture logs and spans with it, as a default of their own threads.
/// Call it inside a runtime when spans are exported.
pub fn subscriber<W>(
    service: &'static str,
    settings: &TelemetrySettings,
    writer: W,
) -> anyhow::Result<(impl tracing::Subscriber + Send + Sync + 'static, Telemetry)>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Filter per layer: a global `warn` filter would disable the spans the
    // exporter needs.
    let filter = EnvFilter::try_new(&settings.log_filter)?;
    let fmt = match settings.log_format {
        // The current span and the list of spans with their fields: the
        // request's span holds `trace_id`.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(writer).with_filter(filter).boxed(),
    };
    let (otel, provider) = match &settings.otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter =
                opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(service).build())
                .build();
            let layer =
                tracing_opentelemetry::layer().with_tracer(provider.tracer(service)).with_filter(LevelFilter::INFO);
            global::set_tracer_provider(provider.clone());
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    Ok((tracing_subscriber::registry().with(fmt).with(otel), Telemetry { provider }))
}

/// For tests: logs only when `TEST_LOG` is set, installed at most once.
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        global::set_text_map_propagator(TraceContextPropagator::new());
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_env_filter(EnvFilter::new("info")).with_test_writer().try_init();
        }
    });
}

/// Injects the current span's trace context into every outgoing gRPC call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInjector;

impl tonic::service::Interceptor for TraceContextInjector {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let context = tracing::Span::current().context();
        global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()))
        });
        Ok(request)
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value.as_str()))
        {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The remote parent context carried by incoming HTTP or gRPC headers.
pub fn extract_context(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// Makes `span` a child of the trace named in `headers`, if any, and
/// records its trace id in the span's `trace_id` field (when it has one) so
/// log lines can be joined to traces.
pub fn set_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    let remote = extract_context(headers);
    let remote_id = remote.span().span_context().trace_id();
    // Fails only when no OpenTelemetry layer is installed: nothing to link.
    let _ = span.set_parent(remote);
    let id = match span.context().span().span_context().trace_id() {
        TraceId::INVALID => remote_id,
        id => id,
    };
    if id != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(id));
    }
}

/// The current span's W3C `traceparent`, to carry a trace where headers do
/// not go (an outbox row, a queued message).
pub fn current_traceparent() -> Option<String> {
    let mut carrier = std::collections::HashMap::new();
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace a [`current_traceparent`] names.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_str(traceparent) {
        headers.insert("traceparent", value);
    }
    set_remote_parent(span, &headers);
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn traced() -> tracing::subscriber::DefaultGuard {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::set_default(subscriber)
    }

    fn trace_id(span: &tracing::Span) -> TraceId {
        span.context().span().span_context().trace_id()
    }

    #[test]
    fn a_traceparent_carries_the_trace_across_a_hop() {
        let _guard = traced();
        let booking = tracing::info_span!("booking");
        let carried = booking.in_scope(current_traceparent).expect("a traced span has a traceparent");
        assert!(carried.starts_with("00-") && carried.contains(&trace_id(&booking).to_string()), "{carried}");

        let delivery = tracing::info_span!("delivery", trace_id = tracing::field::Empty);
        set_parent_from_traceparent(&delivery, &carried);
        assert_eq!(trace_id(&delivery), trace_id(&booking));
    }

    #[test]
    fn no_span_no_traceparent_and_garbage_is_ignored() {
        let _guard = traced();
        assert_eq!(current_traceparent(), None);
        let span = tracing::info_span!("request", trace_id = tracing::field::Empty);
        set_parent_from_traceparent(&span, "not a traceparent\n");
        assert_ne!(trace_id(&span), TraceId::INVALID, "a fresh trace instead");
    }
}
