//! The service as a library: `main.rs` loads [`settings::Settings`], starts [`telemetry`]
//! and runs a [`server::Application`]; the integration tests in `tests/` build the same
//! application on port 0.

{% if auth == "oidc" -%}
pub mod api;
pub mod auth;
{% endif -%}
pub mod client_ip;
{% if database != "none" -%}
pub mod db;
{% endif -%}
pub mod health;
{% if metrics -%}
pub mod metrics;
{% endif -%}
{% if openapi -%}
pub mod openapi;
{% endif -%}
{% if otel -%}
pub mod otel;
{% endif -%}
pub mod policies;
pub mod problem;
pub mod request_id;
{% if scheduler -%}
pub mod scheduler;
{% endif -%}
pub mod server;
pub mod settings;
pub mod telemetry;
{% if database != "none" -%}
pub mod users;
{% endif -%}
