//! One service run as its own process, configured from `CRENEAU__…`
//! variables exactly like its own binary: `creneau serve <service>`, and
//! the rush benchmark's service processes.

use std::process::ExitCode;

/// The services `serve` knows, in the order they are best started.
pub const SERVICES: [&str; 5] = ["notification", "slot-inventory", "eligibility", "centre-directory", "gateway"];

/// Runs `service` until SIGTERM; an unknown name is a usage error.
pub fn serve(service: &str) -> ExitCode {
    use creneau_kit::entrypoint::run;
    match service {
        "gateway" => run::<creneau_gateway::Settings, _, _>(service_name(service), |config| async move {
            creneau_gateway::Application::from_config(config).await?.run_until_stopped().await
        }),
        "eligibility" => run::<creneau_eligibility::Settings, _, _>(service_name(service), |config| async move {
            creneau_eligibility::Application::from_config(config).await?.run_until_stopped().await
        }),
        "centre-directory" => {
            run::<creneau_centre_directory::Settings, _, _>(service_name(service), |config| async move {
                creneau_centre_directory::Application::from_config(config).await?.run_until_stopped().await
            })
        }
        "slot-inventory" => run::<creneau_slot_inventory::Settings, _, _>(service_name(service), |config| async move {
            creneau_slot_inventory::Application::from_config(config).await?.run_until_stopped().await
        }),
        "notification" => run::<creneau_notification::Settings, _, _>(service_name(service), |config| async move {
            creneau_notification::Application::from_config(config).await?.run_until_stopped().await
        }),
        other => {
            eprintln!("creneau: no service called {other:?}; one of {}", SERVICES.join(", "));
            ExitCode::from(64)
        }
    }
}

fn service_name(service: &str) -> &'static str {
    match service {
        "gateway" => creneau_gateway::SERVICE,
        "eligibility" => creneau_eligibility::SERVICE,
        "centre-directory" => creneau_centre_directory::SERVICE,
        "slot-inventory" => creneau_slot_inventory::SERVICE,
        _ => creneau_notification::SERVICE,
    }
}
