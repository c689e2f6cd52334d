use std::process::ExitCode;

use creneau_gateway::{Application, SERVICE, Settings};

#[global_allocator]
static ALLOCATOR: creneau_kit::Allocator = creneau_kit::ALLOCATOR;

fn main() -> ExitCode {
    creneau_kit::entrypoint::run(SERVICE, |settings: Settings| async move {
        Application::build(settings).await?.run_until_stopped().await
    })
}
