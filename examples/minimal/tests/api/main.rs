//! The service's integration tests: one binary, a module per concern, sharing `helpers`.
//! Each module of an option is on with the option's Cargo feature, like the code it tests.

use minimal_service as service;

mod helpers;

mod health;
mod logging;
mod policies;
mod request_id;
mod settings;
