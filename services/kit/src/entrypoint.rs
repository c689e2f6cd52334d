//! What every service binary's `main` does: load and check settings (exit
//! 64 with a clear message when they are wrong, like sysexits' EX_USAGE),
//! install telemetry, run until SIGTERM, flush spans.

use std::future::Future;
use std::process::ExitCode;

use serde::de::DeserializeOwned;

use crate::TelemetrySettings;

/// Settings a service can be started from: read from the layered sources,
/// then parsed once into the typed configuration the service runs on.
pub trait ServiceSettings: DeserializeOwned {
    /// The service's own defaults, layered over the common ones.
    const DEFAULTS: &'static str;

    /// Every value parsed: durations, keys, peers' channels.
    type Config;

    fn telemetry(&self) -> &TelemetrySettings;

    /// Checks and converts what deserialising cannot (addresses, keys,
    /// limits against each other). The one way to a `Config`, whether the
    /// service runs as its own binary, inside `creneau up`, in a test or
    /// from the chart's environment, so every path gets the same checks.
    fn parse(self) -> Result<Self::Config, String>;
}

/// Loads, parses, installs telemetry, then serves `config` until SIGTERM.
pub fn run<S, F, Fut>(service: &'static str, serve: F) -> ExitCode
where
    S: ServiceSettings,
    F: FnOnce(S::Config) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings: S = match crate::settings::load(S::DEFAULTS) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{service}: {error}");
            return ExitCode::from(64);
        }
    };
    let telemetry_settings = settings.telemetry().clone();
    let config = match settings.parse() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{service}: invalid configuration: {error}");
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{service}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let telemetry = match crate::telemetry::init(service, &telemetry_settings) {
            Ok(telemetry) => telemetry,
            Err(error) => {
                eprintln!("{service}: cannot start telemetry: {error}");
                return ExitCode::from(64);
            }
        };
        let result = serve(config).await;
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
