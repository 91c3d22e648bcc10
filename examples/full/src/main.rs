use std::process::ExitCode;

use full_service as service;
use service::server::Application;
use service::settings::Settings;
use service::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    // The TLS crypto provider comes first: every HTTPS client the service builds needs it.
    #[cfg(feature = "auth")]
    service::auth::install_crypto_provider();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Flushes what is still buffered (OpenTelemetry spans) when main returns.
    let _telemetry = match telemetry::init(&settings.log) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: cannot start logging: {error}");
            return ExitCode::FAILURE;
        }
    };
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
