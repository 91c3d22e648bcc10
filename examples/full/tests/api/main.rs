//! The service's integration tests: one binary, a module per concern, sharing `helpers`.
//! Each module of an option is on with the option's Cargo feature, like the code it tests.

use full_service as service;

mod helpers;

#[cfg(feature = "auth")]
mod auth;
#[cfg(feature = "database")]
mod db;
mod health;
mod logging;
#[cfg(feature = "openapi")]
mod openapi;
#[cfg(feature = "otel")]
mod otel;
mod policies;
#[cfg(feature = "auth")]
mod provider;
mod request_id;
#[cfg(feature = "auth")]
mod sample;
#[cfg(feature = "scheduler")]
mod scheduler;
mod settings;
#[cfg(feature = "database")]
mod users;
