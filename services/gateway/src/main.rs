use std::process::ExitCode;

use creneau_gateway::{Application, SERVICE, Settings};

fn main() -> ExitCode {
    creneau_kit::entrypoint::run(SERVICE, |settings: Settings| async move {
        Application::build(settings).await?.run_until_stopped().await
    })
}
