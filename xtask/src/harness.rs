//! The load harness of `cargo xtask bench` and `cargo xtask reliability`: servers started
//! on loopback (`server.rs`), tokens from the OpenID provider and minted in bulk
//! (`tokens.rs`), wrk runs and what they measure (`load.rs`), and the scenarios measured.

mod allocations;
mod load;
mod server;
mod tokens;

use std::time::Duration;

pub use allocations::Counter;
pub use load::{Load, Measured, WRK_CONNECTIONS, WRK_THREADS, measure_once, median};
pub use server::{Overrides, Server, Target, WORKERS, resident};
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
    LivenessQuiet,
    LivenessOneWorker,
    Rs256Repeated,
    /// Liveness with an `Authorization` header like the repeated RS256 token's (the
    /// provider's token for the same resource), which it does not read: what the token's
    /// bytes cost a request without the token check.
    LivenessTokenHeader,
    Rs256Fresh,
    Es256Repeated,
    Es256Fresh,
    UsersMe,
}

impl Scenario {
    pub const ALL: [Self; 9] = [
        Self::Liveness,
        Self::LivenessQuiet,
        Self::LivenessOneWorker,
        Self::Rs256Repeated,
        Self::LivenessTokenHeader,
        Self::Rs256Fresh,
        Self::Es256Repeated,
        Self::Es256Fresh,
        Self::UsersMe,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::Liveness
            | Self::LivenessQuiet
            | Self::LivenessOneWorker
            | Self::LivenessTokenHeader => "/health/liveness",
            Self::UsersMe => "/api/v1/users/me",
            _ => "/api/v1/protected",
        }
    }

    /// What the scenario changes of the server's settings.
    pub fn overrides(self) -> Overrides {
        match self {
            Self::LivenessQuiet => Overrides {
                env: vec![("LOG_LEVEL", "warn".to_owned())],
                ..Overrides::default()
            },
            Self::LivenessOneWorker => Overrides {
                workers: Some(1),
                ..Overrides::default()
            },
            _ => Overrides::default(),
        }
    }

    /// Whether the floor runs this scenario itself (it has no logs, and no users).
    pub fn floor_runs(self) -> bool {
        !matches!(self, Self::LivenessQuiet | Self::UsersMe)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Liveness => "`GET /health/liveness`",
            Self::LivenessQuiet => "`GET /health/liveness`, logs at `warn`",
            Self::LivenessOneWorker => "`GET /health/liveness`, `WORKERS=1`",
            Self::Rs256Repeated => "`/api/v1/protected`, RS256, one repeated token",
            Self::LivenessTokenHeader => {
                "`GET /health/liveness` with such a token's `Authorization` header (not read)"
            }
            Self::Rs256Fresh => "`/api/v1/protected`, RS256, a fresh token per request",
            Self::Es256Repeated => "`/api/v1/protected`, ES256, one repeated token",
            Self::Es256Fresh => "`/api/v1/protected`, ES256, a fresh token per request",
            Self::UsersMe => "`GET /api/v1/users/me` (SQLite), RS256, one repeated token",
        }
    }

    /// The scenario's name for `cargo xtask bench --only`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Liveness => "liveness",
            Self::LivenessQuiet => "liveness-warn",
            Self::LivenessOneWorker => "liveness-one-worker",
            Self::Rs256Repeated => "rs256-repeated",
            Self::LivenessTokenHeader => "liveness-token-header",
            Self::Rs256Fresh => "rs256-fresh",
            Self::Es256Repeated => "es256-repeated",
            Self::Es256Fresh => "es256-fresh",
            Self::UsersMe => "users-me",
        }
    }

    /// The floor's scenario this one is compared with.
    pub fn floor(self) -> Self {
        match self {
            Self::UsersMe => Self::Rs256Repeated,
            Self::LivenessQuiet => Self::Liveness,
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
