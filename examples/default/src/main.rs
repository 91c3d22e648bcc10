use std::process::ExitCode;

use default_service::server::Application;
use default_service::settings::Settings;
use default_service::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    // `cargo run -- openapi > openapi.json` exports the API description.
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        println!("{}", default_service::openapi::to_json());
        return ExitCode::SUCCESS;
    }
    default_service::auth::install_crypto_provider();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = telemetry::init(&settings.log) {
        eprintln!("error: cannot start logging: {error}");
        return ExitCode::FAILURE;
    }
    let served = match Application::build(&settings).await {
        Ok(application) => application.run_until_stopped().await,
        Err(error) => Err(error),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the server stopped with an error");
            ExitCode::FAILURE
        }
    }
}
