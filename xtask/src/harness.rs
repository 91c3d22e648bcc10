//! The load harness of `cargo xtask bench` and `cargo xtask reliability`: servers started
//! on loopback (`server.rs`), tokens from the OpenID provider and minted in bulk
//! (`tokens.rs`), wrk runs and what they measure (`load.rs`), and the scenarios measured.

mod load;
mod server;
mod tokens;

use std::time::Duration;

pub use load::{Load, Measured, WRK_CONNECTIONS, WRK_THREADS, measure};
pub use server::{Server, Target, WORKERS, resident};
pub use tokens::Tokens;

use crate::http;
use crate::shell::Result;

/// The audience of the provider's default resource.
pub const AUDIENCE: &str = "https://api.example.test";
/// The default example's package and binary.
pub const SERVICE: &str = "default-service";

/// The provider's discovery document.
pub fn discovery(issuer: &str) -> Result<String> {
    http::get_ok(&format!("{issuer}/.well-known/openid-configuration"))
}

/// What is measured, in the order it runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scenario {
    Liveness,
    Rs256Repeated,
    Rs256Fresh,
    Es256Repeated,
    Es256Fresh,
    UsersMe,
}

impl Scenario {
    pub const ALL: [Self; 6] = [
        Self::Liveness,
        Self::Rs256Repeated,
        Self::Rs256Fresh,
        Self::Es256Repeated,
        Self::Es256Fresh,
        Self::UsersMe,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::Liveness => "/health/liveness",
            Self::UsersMe => "/api/v1/users/me",
            _ => "/api/v1/protected",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Liveness => "`GET /health/liveness`",
            Self::Rs256Repeated => "`/api/v1/protected`, RS256, one repeated token",
            Self::Rs256Fresh => "`/api/v1/protected`, RS256, a fresh token per request",
            Self::Es256Repeated => "`/api/v1/protected`, ES256, one repeated token",
            Self::Es256Fresh => "`/api/v1/protected`, ES256, a fresh token per request",
            Self::UsersMe => "`GET /api/v1/users/me` (SQLite), RS256, one repeated token",
        }
    }

    /// The floor's scenario this one is compared with.
    pub fn floor(self) -> Self {
        match self {
            Self::UsersMe => Self::Rs256Repeated,
            other => other,
        }
    }
}

pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}
