use std::process::ExitCode;

use creneau_notification::{Application, SERVICE, Settings};

#[global_allocator]
static ALLOCATOR: creneau_kit::Allocator = creneau_kit::ALLOCATOR;

fn main() -> ExitCode {
    creneau_kit::entrypoint::run::<Settings, _, _>(SERVICE, |config| async move {
        Application::from_config(config).await?.run_until_stopped().await
    })
}
