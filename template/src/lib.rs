//! The service as a library: `main.rs` loads [`settings::Settings`], starts [`telemetry`]
//! and runs a [`server::Application`]; the integration tests in `tests/` build the same
//! application on port 0.
//!
//! Each optional part is a module behind the Cargo feature of the same name (see
//! Cargo.toml), plugged into the rest with one `#[cfg(feature = "...")]` line per place.

{% if auth == "oidc" -%}
#[cfg(feature = "auth")]
pub mod api;
#[cfg(feature = "auth")]
pub mod auth;
{% endif -%}
pub mod bunyan;
pub mod client_ip;
{% if database != "none" -%}
#[cfg(feature = "database")]
pub mod db;
{% endif -%}
pub mod health;
pub mod log_writer;
{% if metrics -%}
#[cfg(feature = "metrics")]
pub mod metrics;
{% endif -%}
{% if openapi -%}
#[cfg(feature = "openapi")]
pub mod openapi;
{% endif -%}
{% if otel -%}
#[cfg(feature = "otel")]
pub mod otel;
{% endif -%}
pub mod policies;
pub mod problem;
pub mod request_id;
{% if scheduler -%}
#[cfg(feature = "scheduler")]
pub mod scheduler;
{% endif -%}
pub mod server;
pub mod settings;
pub mod telemetry;
{% if database != "none" -%}
#[cfg(feature = "database")]
pub mod users;
{% endif -%}
