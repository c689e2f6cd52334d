//! What every service binary's `main` does: load and check settings (exit
//! 64 with a clear message when they are wrong, like sysexits' EX_USAGE),
//! install telemetry, run until SIGTERM, flush spans.

use std::future::Future;
use std::process::ExitCode;

use serde::de::DeserializeOwned;

use crate::TelemetrySettings;

/// Settings a service binary can be started from.
pub trait ServiceSettings: DeserializeOwned {
    /// The service's own defaults, layered over the common ones.
    const DEFAULTS: &'static str;

    fn telemetry(&self) -> &TelemetrySettings;

    /// Checks what deserialising cannot (addresses, keys), at boot.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

pub fn run<S, F, Fut>(service: &'static str, serve: F) -> ExitCode
where
    S: ServiceSettings,
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings: S = match crate::settings::load(S::DEFAULTS) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{service}: {error}");
            return ExitCode::from(64);
        }
    };
    if let Err(error) = settings.validate() {
        eprintln!("{service}: invalid configuration: {error}");
        return ExitCode::from(64);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{service}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let telemetry = match crate::telemetry::init(service, settings.telemetry()) {
            Ok(telemetry) => telemetry,
            Err(error) => {
                eprintln!("{service}: cannot start telemetry: {error}");
                return ExitCode::from(64);
            }
        };
        let result = serve(settings).await;
        let code = match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "{service} failed");
                ExitCode::FAILURE
            }
        };
        tokio::task::spawn_blocking(move || telemetry.shutdown()).await.ok();
        code
    })
}
