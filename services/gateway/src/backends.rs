//! The gRPC clients the gateway calls, each call with a deadline, and
//! retried on another replica when it is safe to.

use std::time::Duration;

use creneau_kit::client::{GrpcChannel, RetryUnavailable};
use creneau_proto::centre_directory::v1::centre_directory_client::CentreDirectoryClient;
use creneau_proto::centre_directory::v1::centre_directory_server;
use creneau_proto::eligibility::v1::eligibility_client::EligibilityClient;
use creneau_proto::eligibility::v1::eligibility_server;
use creneau_proto::slot_inventory::v1::slot_inventory_client::SlotInventoryClient;
use creneau_proto::slot_inventory::v1::slot_inventory_server;
use tonic_health::pb::health_client::HealthClient;

use crate::settings::Config;

/// A backend channel whose safe calls are retried when a replica is
/// unavailable (see [`retry_safe`]).
pub type Backend = RetryUnavailable<GrpcChannel>;

#[derive(Clone)]
pub struct Backends {
    pub eligibility: EligibilityClient<Backend>,
    pub centres: CentreDirectoryClient<Backend>,
    pub slots: SlotInventoryClient<Backend>,
    /// Health clients by backend name, for readiness.
    pub health: Vec<(&'static str, HealthClient<GrpcChannel>)>,
    timeout: Duration,
}

impl Backends {
    pub fn connect(config: &Config) -> Self {
        let (eligibility, centres, slots) =
            (config.eligibility.clone(), config.centre_directory.clone(), config.slot_inventory.clone());
        Self {
            health: vec![
                ("eligibility", HealthClient::new(eligibility.clone())),
                ("centre-directory", HealthClient::new(centres.clone())),
                ("slot-inventory", HealthClient::new(slots.clone())),
            ],
            eligibility: EligibilityClient::new(with_retries(eligibility)),
            centres: CentreDirectoryClient::new(with_retries(centres)),
            slots: SlotInventoryClient::new(with_retries(slots)),
            timeout: config.backend_timeout,
        }
    }

    /// A request carrying the gateway's deadline.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }
}

/// The one place retries are decided: a call found `UNAVAILABLE` (its
/// replica refused or dropped the connection) runs again, up to twice more
/// after a short backoff, when running it twice cannot do harm.
fn with_retries(channel: GrpcChannel) -> Backend {
    RetryUnavailable::new(channel, retry_safe)
}

/// Reads; a booking, made idempotent by its key (a replay answers the
/// first booking); a cancellation, which leaves the booking cancelled
/// however often it runs. Not a hold (a second one could be taken) nor a
/// move (it could move twice).
fn retry_safe(path: &str) -> bool {
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return false;
    };
    match service {
        slot_inventory_server::SERVICE_NAME => matches!(
            method,
            "Book" | "Cancel" | "GetAppointment" | "ListSlots" | "AvailabilitySummary" | "ListVaccines"
        ),
        eligibility_server::SERVICE_NAME => matches!(method, "Check" | "ListVerificationKeys"),
        centre_directory_server::SERVICE_NAME => matches!(method, "SearchCentres" | "GetCentre"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::retry_safe;

    #[test]
    fn bookings_reads_and_cancellations_are_retried_holds_and_moves_are_not() {
        for safe in [
            "/creneau.slot_inventory.v1.SlotInventory/Book",
            "/creneau.slot_inventory.v1.SlotInventory/Cancel",
            "/creneau.slot_inventory.v1.SlotInventory/GetAppointment",
            "/creneau.slot_inventory.v1.SlotInventory/ListSlots",
            "/creneau.eligibility.v1.Eligibility/Check",
            "/creneau.centre_directory.v1.CentreDirectory/SearchCentres",
            "/creneau.centre_directory.v1.CentreDirectory/GetCentre",
        ] {
            assert!(retry_safe(safe), "{safe}");
        }
        for unsafe_ in [
            "/creneau.slot_inventory.v1.SlotInventory/Hold",
            "/creneau.slot_inventory.v1.SlotInventory/ReleaseHold",
            "/creneau.slot_inventory.v1.SlotInventory/Reschedule",
            "/creneau.slot_inventory.v1.SlotInventory/CreateSlots",
            "/creneau.centre_directory.v1.CentreDirectory/UpsertCentre",
            "/creneau.notification.v1.Notification/Deliver",
            "/creneau.slot_inventory.v1.SlotInventory",
            "",
        ] {
            assert!(!retry_safe(unsafe_), "{unsafe_}");
        }
    }
}
