use creneau_gateway::{Application, GatewaySettings, Settings};
use creneau_kit::{ServerSettings, TelemetrySettings};
use tokio::sync::oneshot;

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

/// A gateway whose backends all point at a port nothing listens on.
pub async fn spawn_gateway() -> TestApp {
    creneau_kit::telemetry::init_for_tests();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = format!("http://127.0.0.1:{closed}");
    let settings = Settings {
        server: ServerSettings::local(0),
        telemetry: TelemetrySettings::default(),
        gateway: GatewaySettings {
            eligibility_url: nowhere.clone(),
            centre_directory_url: nowhere.clone(),
            slot_inventory_url: nowhere,
            backend_timeout_ms: 1000,
            max_body_bytes: 64 * 1024,
        },
        queue: Default::default(),
        database: None,
    };
    let app = Application::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp { url, http: reqwest::Client::new(), _stop: stop }
}

/// Asserts a problem+json response with `status` and a type ending in
/// `kind`; returns the body.
pub async fn expect_problem(response: reqwest::Response, status: u16, kind: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["type"].as_str().unwrap().ends_with(kind), "{body}");
    assert_eq!(body["status"], status);
    assert!(!body["title"].as_str().unwrap().is_empty());
    assert!(body["detail"].is_string());
    body
}
