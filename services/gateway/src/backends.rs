//! The gRPC clients the gateway calls, each call with a deadline.

use std::time::Duration;

use creneau_kit::client::{self, GrpcChannel};
use creneau_proto::centre_directory::v1::centre_directory_client::CentreDirectoryClient;
use creneau_proto::eligibility::v1::eligibility_client::EligibilityClient;
use creneau_proto::slot_inventory::v1::slot_inventory_client::SlotInventoryClient;
use tonic_health::pb::health_client::HealthClient;

use crate::settings::GatewaySettings;

#[derive(Clone)]
pub struct Backends {
    pub eligibility: EligibilityClient<GrpcChannel>,
    pub centres: CentreDirectoryClient<GrpcChannel>,
    pub slots: SlotInventoryClient<GrpcChannel>,
    /// Health clients by backend name, for readiness.
    pub health: Vec<(&'static str, HealthClient<GrpcChannel>)>,
    timeout: Duration,
}

impl Backends {
    pub fn connect(settings: &GatewaySettings) -> Result<Self, client::AddressError> {
        let eligibility = client::channel(&settings.eligibility_url)?;
        let centres = client::channel(&settings.centre_directory_url)?;
        let slots = client::channel(&settings.slot_inventory_url)?;
        Ok(Self {
            health: vec![
                ("eligibility", HealthClient::new(eligibility.clone())),
                ("centre-directory", HealthClient::new(centres.clone())),
                ("slot-inventory", HealthClient::new(slots.clone())),
            ],
            eligibility: EligibilityClient::new(eligibility),
            centres: CentreDirectoryClient::new(centres),
            slots: SlotInventoryClient::new(slots),
            timeout: settings.backend_timeout(),
        })
    }

    /// A request carrying the gateway's deadline.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }
}
