//! The service as a library: `main.rs` loads [`settings::Settings`], starts [`telemetry`]
//! and runs a [`server::Application`]; the integration tests in `tests/` build the same
//! application on port 0.

pub mod api;
pub mod auth;
pub mod client_ip;
pub mod db;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod policies;
pub mod problem;
pub mod request_id;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod users;
