use std::process::ExitCode;

use {{crate_name}}::server::Application;
use {{crate_name}}::settings::Settings;
use {{crate_name}}::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
{%- if openapi %}
    // `cargo run -- openapi > openapi.json` exports the API description.
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        println!("{}", {{crate_name}}::openapi::to_json());
        return ExitCode::SUCCESS;
    }
{%- endif %}
{%- if auth == "oidc" %}
    {{crate_name}}::auth::install_crypto_provider();
{%- endif %}
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
{%- if otel %}
    {{crate_name}}::otel::shutdown();
{%- endif %}
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the server stopped with an error");
            ExitCode::FAILURE
        }
    }
}
