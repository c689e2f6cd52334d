//! Every service port answers the standard health protocol and, for the
//! service APIs, reflection.

use creneau_kit::testing::Backend;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::helpers::spawn_platform;

async fn serving(port: u16, service: &str) -> bool {
    let mut health = HealthClient::new(creneau_kit::testing::channel(port).await);
    for _ in 0..50 {
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status;
        if status == ServingStatus::Serving as i32 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

async fn listed_services(port: u16) -> Vec<String> {
    let mut reflection = ServerReflectionClient::new(creneau_kit::testing::channel(port).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.next().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_reflection_answer_on_every_service_port() {
    let Some(p) = spawn_platform(Backend::Sqlite).await else { return };
    for (service, grpc_name) in [
        ("eligibility", "creneau.eligibility.v1.Eligibility"),
        ("centre-directory", "creneau.centre_directory.v1.CentreDirectory"),
        ("slot-inventory", "creneau.slot_inventory.v1.SlotInventory"),
        ("notification", "creneau.notification.v1.Notification"),
    ] {
        let port = p.platform.port(service);
        assert!(serving(port, "").await, "{service} is not SERVING");
        assert!(serving(port, grpc_name).await, "{grpc_name} is not SERVING");
        let listed = listed_services(port).await;
        assert!(listed.iter().any(|s| s == grpc_name), "{service} reflection lists {listed:?}");
        assert!(listed.iter().any(|s| s == "grpc.health.v1.Health"));
        let operated = listed.iter().any(|s| s == "creneau.operations.v1.DeadLetters");
        assert_eq!(operated, matches!(service, "slot-inventory" | "notification"), "{service} lists {listed:?}");
        assert!(serving(port, creneau_kit::server::LIVENESS).await, "{service} is not alive");
    }
    let ready = p.http.get(p.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    p.platform.stop().await.unwrap();
}
