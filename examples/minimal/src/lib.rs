//! The service as a library: `main.rs` loads [`settings::Settings`], starts [`telemetry`]
//! and runs a [`server::Application`]; the integration tests in `tests/` build the same
//! application on port 0.
//!
//! Each optional part is a module behind the Cargo feature of the same name (see
//! Cargo.toml), plugged into the rest with one `#[cfg(feature = "...")]` line per place.

pub mod bunyan;
pub mod client_ip;
pub mod health;
pub mod log_writer;
pub mod policies;
pub mod problem;
pub mod request_id;
pub mod server;
pub mod settings;
pub mod telemetry;
