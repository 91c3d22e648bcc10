//! The service's integration tests: one binary, a module per concern, sharing `helpers`.
//! Each module of an option is on with the option's Cargo feature, like the code it tests.

use {{crate_name}} as service;

mod helpers;

{% if auth == "oidc" -%}
#[cfg(feature = "auth")]
mod auth;
{% endif -%}
{% if database != "none" -%}
#[cfg(feature = "database")]
mod db;
{% endif -%}
mod health;
mod logging;
{% if openapi -%}
#[cfg(feature = "openapi")]
mod openapi;
{% endif -%}
{% if otel -%}
#[cfg(feature = "otel")]
mod otel;
{% endif -%}
mod policies;
{% if auth == "oidc" -%}
#[cfg(feature = "auth")]
mod provider;
{% endif -%}
mod request_id;
{% if auth == "oidc" -%}
#[cfg(feature = "auth")]
mod sample;
{% endif -%}
{% if scheduler -%}
#[cfg(feature = "scheduler")]
mod scheduler;
{% endif -%}
mod settings;
{% if database != "none" -%}
#[cfg(feature = "database")]
mod users;
{% endif -%}
