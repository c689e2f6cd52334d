//! One booking is one trace across services, and no span or log line names
//! the citizen.
//!
//! Spans go to an OTLP receiver in the test, logs (JSON, as in production)
//! to a buffer. The subscriber is the default of this test's own runtime
//! threads only, never the process's: the other tests run untraced.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use creneau_kit::TelemetrySettings;
use creneau_kit::settings::LogFormat;
use creneau_kit::testing::Backend;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};
use tokio_stream::wrappers::TcpListenerStream;

use crate::helpers::spawn_platform;

/// Spans received over OTLP.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// Log output, as written.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Citizen {
    first_name: &'static str,
    last_name: &'static str,
    email: &'static str,
    phone: &'static str,
    birth_date: &'static str,
}

const CITIZEN: Citizen = Citizen {
    first_name: "Éloïse",
    last_name: "Quennevillard",
    email: "eloise.quennevillard@example.fr",
    phone: "+33 6 12 34 56 78",
    birth_date: "1942-07-19",
};

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).map(|kv| text(&kv.value))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn describe(attributes: &[KeyValue]) -> String {
    attributes.iter().map(|kv| format!("{}={} ", kv.key, text(&kv.value))).collect()
}

/// Everything a span tells: names, attributes, events, status.
fn everything(span: &Span) -> String {
    let mut all = format!("{} {}", span.name, describe(&span.attributes));
    for event in &span.events {
        all.push_str(&format!(" {} {}", event.name, describe(&event.attributes)));
    }
    if let Some(status) = &span.status {
        all.push_str(&status.message);
    }
    all
}

/// Eligibility, then a booking, through the gateway; returns the
/// gateway's metrics once the confirmation went out, or `None` when no
/// PostgreSQL answers. On
/// PostgreSQL: SQLite's connection thread keeps the span of its last
/// statement, so a request's span may close long after the request.
async fn eligibility_then_booking() -> Option<String> {
    let p = spawn_platform(Backend::Postgres).await?;
    let slots = p.centre_with_slots("metz-traces", 1, 10).await;
    let attestation = p.attestation(CITIZEN.birth_date).await;
    let body = json!({
        "slot_id": slots[0],
        "attestation": attestation,
        "citizen": {
            "first_name": CITIZEN.first_name,
            "last_name": CITIZEN.last_name,
            "birth_date": CITIZEN.birth_date,
            "email": CITIZEN.email,
            "phone": CITIZEN.phone,
        }
    });
    let response = p.book("traces-1", &body).await;
    assert_eq!(response.status(), 201);
    let booking: Value = response.json().await.unwrap();
    let messages = p.messages(1).await;
    assert!(messages[0].contains(booking["reference"].as_str().unwrap()), "the confirmation went out");
    let metrics = p.http.get(p.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("/api/v1/bookings"), "requests are counted per route template: {metrics}");
    p.platform.stop().await.unwrap();
    Some(metrics)
}

#[test]
fn one_booking_is_one_trace_and_nothing_names_the_citizen() {
    // The receiver and the exporter work on a runtime of their own, untraced.
    let quiet = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let collector = Collector::default();
    let listener = quiet.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    quiet.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let logs = Logs::default();
    let settings =
        TelemetrySettings { log_filter: "info".into(), log_format: LogFormat::Json, otlp_endpoint: Some(endpoint) };
    let (subscriber, telemetry) = {
        let _runtime = quiet.enter();
        let writer = logs.clone();
        creneau_kit::telemetry::subscriber("creneau", &settings, move || writer.clone()).unwrap()
    };
    let dispatch = tracing::Dispatch::new(subscriber);
    // With a single dispatcher registered, tracing decides whether a
    // callsite is enabled from whichever thread reaches it first: a test
    // running beside this one would switch this one's spans off for good.
    // A second registered dispatcher makes it ask every dispatcher.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());

    // The platform runs on threads whose default is that subscriber.
    let on_start = dispatch.clone();
    let traced = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&on_start)))
        .build()
        .unwrap();
    let ran = tracing::dispatcher::with_default(&dispatch, || traced.block_on(eligibility_then_booking()));
    traced.shutdown_timeout(Duration::from_secs(5));
    let Some(metrics) = ran else {
        return;
    };
    telemetry.flush();

    let spans = collector.0.lock().unwrap().clone();
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let mut traces: BTreeMap<String, Vec<&Span>> = BTreeMap::new();
    for span in &spans {
        traces.entry(hex(&span.trace_id)).or_default().push(span);
    }
    let root = |route: &str| {
        spans
            .iter()
            .find(|s| s.name == "http.request" && attribute(s, "http.route").as_deref() == Some(route))
            .unwrap_or_else(|| {
                let names: Vec<(&str, Option<String>)> =
                    spans.iter().map(|s| (s.name.as_str(), attribute(s, "rpc.method"))).collect();
                panic!("no span for {route} among {names:?}")
            })
    };
    let methods =
        |trace: &str| -> BTreeSet<String> { traces[trace].iter().filter_map(|s| attribute(s, "rpc.method")).collect() };

    // Eligibility: the gateway and the eligibility service, one trace.
    let eligibility = hex(&root("/api/v1/eligibility").trace_id);
    assert!(
        methods(&eligibility).contains("/creneau.eligibility.v1.Eligibility/Check"),
        "eligibility's server span joins the gateway's trace: {:?}",
        methods(&eligibility)
    );

    // The booking: the gateway and slot-inventory, one trace.
    let booking = hex(&root("/api/v1/bookings").trace_id);
    let mut in_booking = traces[&booking].clone();
    in_booking.sort_by_key(|s| s.start_time_unix_nano);
    let names: Vec<String> = in_booking
        .iter()
        .map(|s| match attribute(s, "rpc.method").or_else(|| attribute(s, "http.route")) {
            Some(what) => format!("{} {what}", s.name),
            None => s.name.clone(),
        })
        .collect();
    println!("booking trace {booking}: {names:#?}");
    assert!(
        methods(&booking).contains("/creneau.slot_inventory.v1.SlotInventory/Book"),
        "slot-inventory's server span joins the gateway's trace: {names:?}"
    );
    let ids: BTreeSet<Vec<u8>> = in_booking.iter().map(|s| s.span_id.clone()).collect();
    let roots = in_booking.iter().filter(|s| s.parent_span_id.is_empty() || !ids.contains(&s.parent_span_id)).count();
    assert_eq!(roots, 1, "one tree: every other span's parent is in the trace");

    // The relay hop: notification's Deliver joins the booking's trace only
    // once the outbox carries the trace context.
    let delivered: Vec<&String> = traces
        .iter()
        .filter(|(_, spans)| {
            spans
                .iter()
                .any(|s| attribute(s, "rpc.method").as_deref() == Some("/creneau.notification.v1.Notification/Deliver"))
        })
        .map(|(id, _)| id)
        .collect();
    println!("notification Deliver traces: {delivered:?} (booking trace joined: {})", delivered.contains(&&booking));
    assert!(
        traces[&booking].iter().any(|s| s.name == "notification.event"),
        "notification's work on the booking's event joins the booking's trace across the outbox"
    );

    // Logs are JSON lines; those written during a request carry its trace id.
    assert!(logs.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "every log line is JSON");
    let confirmed = logs.lines().find(|l| l.contains("booking confirmed")).expect("slot-inventory logs the booking");
    assert!(confirmed.contains(&format!(r#""trace_id":"{booking}""#)), "{confirmed}");
    println!("{} log lines, {} spans in {} traces", logs.lines().count(), spans.len(), traces.len());

    // Nothing names the citizen: no span name, attribute or event, no log.
    let digits: String = CITIZEN.phone.chars().filter(char::is_ascii_digit).collect();
    let needles = [
        CITIZEN.first_name,
        CITIZEN.last_name,
        &CITIZEN.last_name.to_lowercase(),
        CITIZEN.email,
        CITIZEN.phone,
        &digits,
        CITIZEN.birth_date,
        "19/07/1942",
    ];
    for span in &spans {
        let all = everything(span);
        for needle in needles {
            assert!(!all.contains(needle), "span {:?} carries {needle:?}: {all}", span.name);
        }
    }
    for line in logs.lines() {
        for needle in needles {
            assert!(!line.contains(needle), "a log line carries {needle:?}: {line}");
        }
    }
    for needle in needles {
        assert!(!metrics.contains(needle), "the metrics carry {needle:?}");
    }
    telemetry.shutdown();
}
