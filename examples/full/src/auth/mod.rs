//! OpenID Connect resource-server authentication.
//!
//! - [`settings`]: `OIDC_*` settings.
//! - [`keys`]: discovery and the JWKS cache with its refreshes.
//! - [`validator`]: the checks a bearer token must pass.
//! - [`cache`]: the verified-token cache.
//! - [`claims`]: [`AccessToken`], the verified claims a handler receives.
//! - [`extract`]: the extractors and the [`protect`]/[`require`] middleware.
//! - [`error`]: RFC 6750 answers for refused requests.
//! - [`dev_issuer`]: a local OpenID provider for development.
//!
//! Protect a route by taking an [`AccessToken`] argument; check scopes and roles with
//! [`AccessToken::require_scope`] and [`AccessToken::require_role`].

pub mod cache;
pub mod claims;
pub mod dev_issuer;
pub mod error;
pub mod extract;
pub mod keys;
pub mod settings;
pub mod validator;

use std::io;
use std::net::SocketAddr;

use actix_web::web;

pub use claims::{AccessToken, Claims};
pub use error::AuthError;
#[cfg(feature = "openapi")]
pub use error::{ApiDoc, BearerRefusals, RoleRefusal};
pub use extract::{OptionalAccessToken, protect, require};
pub use settings::AuthSettings;

use crate::health::Readiness;
use dev_issuer::DevIssuer;
use keys::{KeyStore, KeysLoaded};
use settings::Provider;
use validator::TokenValidator;

/// Makes aws-lc-rs the process's TLS crypto provider. reqwest is built without one of its
/// own (it would bring a second crypto library, ring), so a `reqwest::Client` built before
/// this call panics. `main` calls it first thing; calling it again does nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The running authentication layer: the validator, the development issuer if enabled, and
/// the background task that keeps the keys fresh (stopped when this is dropped).
pub struct Auth {
    routes: AuthRoutes,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

/// What every worker's `App` needs; cheap to clone.
#[derive(Clone)]
pub struct AuthRoutes {
    validator: web::Data<TokenValidator>,
    dev_issuer: Option<web::Data<DevIssuer>>,
}

impl Auth {
    /// Starts key loading in the background (startup never waits for the provider) and
    /// registers the `oidc` readiness check.
    pub fn start(
        settings: &AuthSettings,
        address: SocketAddr,
        readiness: &Readiness,
    ) -> io::Result<Self> {
        settings.log_loosenings();
        let keys = KeyStore::new(settings).map_err(io::Error::other)?;
        let (issuer, dev_issuer, refresher) = match &settings.provider {
            Provider::Discovery {
                configuration_url,
                issuer,
            } => {
                let task = tokio::spawn(
                    std::sync::Arc::clone(&keys).run(configuration_url.clone(), issuer.clone()),
                );
                (issuer.clone(), None, Some(task))
            }
            Provider::Development => {
                // Settings allow the development issuer on a loopback address only.
                let issuer = format!("http://{address}{}", dev_issuer::PATH);
                // Settings default both to the package name for the development issuer.
                let audience = settings.audience.clone().unwrap_or_default();
                let client = settings.client_id.clone().unwrap_or_default();
                let dev = DevIssuer::generate(issuer.clone(), audience, client)
                    .map_err(io::Error::other)?;
                keys.install(dev.jwks());
                tracing::warn!(%issuer, "the development issuer is on: it signs any token it is asked for");
                (issuer, Some(web::Data::new(dev)), None)
            }
        };
        readiness.register(KeysLoaded(std::sync::Arc::clone(&keys)));
        let validator = web::Data::from(TokenValidator::new(settings, keys, issuer));
        Ok(Self {
            routes: AuthRoutes {
                validator,
                dev_issuer,
            },
            refresher,
        })
    }

    /// The part each worker's `App` is configured with.
    pub fn routes(&self) -> AuthRoutes {
        self.routes.clone()
    }
}

impl Drop for Auth {
    fn drop(&mut self) {
        if let Some(refresher) = &self.refresher {
            refresher.abort();
        }
    }
}

impl AuthRoutes {
    /// Registers the validator for the extractors, and the development issuer's routes.
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        config.app_data(self.validator.clone());
        if let Some(dev_issuer) = &self.dev_issuer {
            config.app_data(dev_issuer.clone());
            dev_issuer::routes(config);
        }
    }
}
