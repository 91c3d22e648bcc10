//! The service's integration tests: one binary, a module per concern, sharing `helpers`.
//! Each module of an option is on with the option's Cargo feature, like the code it tests.

use default_service as service;

mod helpers;

#[cfg(feature = "auth")]
mod auth;
#[cfg(feature = "database")]
mod db;
mod health;
mod logging;
#[cfg(feature = "openapi")]
mod openapi;
mod policies;
#[cfg(feature = "auth")]
mod provider;
mod request_id;
#[cfg(feature = "auth")]
mod sample;
mod settings;
#[cfg(feature = "database")]
mod users;
