//! The provider's signing keys: discovery, the JWKS cache and its refreshes.
//!
//! Keys are fetched in the background, with backoff while the provider is unreachable, and
//! refreshed before the JWKS response's Cache-Control max-age (capped by `OIDC_JWKS_MAX_AGE`)
//! runs out. A token with an unknown `kid` triggers at most one extra fetch per cooldown,
//! whatever the number of such tokens: one caller fetches while the others wait for its
//! result. A failed fetch keeps the keys already loaded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use openidconnect::core::CoreProviderMetadata;
use tokio::sync::Mutex;

use super::settings::AuthSettings;
use crate::health::{CheckResult, HealthCheck};

/// A key ready to verify signatures, with the algorithms it may be used with.
pub struct VerificationKey {
    pub decoding: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

/// The current key set, by `kid`.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    loaded: bool,
}

/// The JWKS cache shared by every worker.
pub struct KeyStore {
    keys: RwLock<Arc<KeySet>>,
    /// Where the keys are, once discovery has succeeded.
    jwks_uri: RwLock<Option<String>>,
    /// Held while fetching, so fetches never overlap; records when the last fetch caused by
    /// an unknown `kid` started.
    fetching: Mutex<Option<Instant>>,
    last_error: RwLock<Option<String>>,
    http: reqwest::Client,
    allowed: Vec<Algorithm>,
    cooldown: Duration,
    max_age: Duration,
    /// Called with `true` when a refresh removed a key, so cached verdicts can be dropped.
    on_change: RwLock<Option<ChangeCallback>>,
}

type ChangeCallback = Box<dyn Fn(bool) + Send + Sync>;

/// Why the keys could not be loaded; the text is shown in readiness.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot reach the provider: {0}")]
    Http(String),
    #[error("invalid discovery document: {0}")]
    Discovery(String),
    #[error("discovery names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("invalid JWKS: {0}")]
    Jwks(String),
}

impl KeyStore {
    pub fn new(settings: &AuthSettings) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            keys: RwLock::default(),
            jwks_uri: RwLock::default(),
            fetching: Mutex::new(None),
            last_error: RwLock::default(),
            http: http_client(settings)?,
            allowed: settings.algorithms.clone(),
            cooldown: settings.jwks_cooldown,
            max_age: settings.jwks_max_age,
            on_change: RwLock::default(),
        }))
    }

    /// Registers the callback told about key changes.
    pub fn on_change(&self, callback: impl Fn(bool) + Send + Sync + 'static) {
        *write(&self.on_change) = Some(Box::new(callback));
    }

    /// The key for `kid`, if the current set has it.
    pub fn get(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        read(&self.keys).keys.get(kid).cloned()
    }

    /// The only key of the set, for tokens that name none.
    pub fn single(&self) -> Option<Arc<VerificationKey>> {
        let keys = read(&self.keys);
        (keys.keys.len() == 1)
            .then(|| keys.keys.values().next().cloned())
            .flatten()
    }

    pub fn is_loaded(&self) -> bool {
        read(&self.keys).loaded
    }

    /// Installs a key set directly (the development issuer's).
    pub fn install(&self, set: &JwkSet) {
        self.replace(set);
    }

    // ANCHOR: unknown_kid
    /// Fetches the key set again for an unknown `kid`, unless a fetch started less than a
    /// cooldown ago. Concurrent callers wait for the fetch in progress instead of starting
    /// their own.
    pub async fn refresh_for_unknown_kid(&self) {
        let mut last = self.fetching.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(error) = self.fetch("unknown_kid").await {
            tracing::warn!(%error, "key refresh for an unknown kid failed; keeping the current keys");
        }
    }
    // ANCHOR_END: unknown_kid

    /// Discovers the provider and keeps its keys fresh, forever. Spawn it once.
    pub async fn run(self: Arc<Self>, configuration_url: String, issuer: String) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let next = match self.refresh(&configuration_url, &issuer).await {
                Ok(max_age) => {
                    backoff = Duration::from_secs(1);
                    max_age.min(self.max_age).max(self.cooldown)
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_secs = backoff.as_secs(), "cannot load the provider's keys");
                    *write(&self.last_error) = Some(error.to_string());
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    wait
                }
            };
            tokio::time::sleep(next).await;
        }
    }

    /// One scheduled refresh: discovery when it has not succeeded yet, then the key set.
    /// Returns how long the key set may be cached.
    async fn refresh(&self, configuration_url: &str, issuer: &str) -> Result<Duration, KeyError> {
        if read(&self.jwks_uri).is_none() {
            let jwks_uri = self.discover(configuration_url, issuer).await?;
            *write(&self.jwks_uri) = Some(jwks_uri);
        }
        let _single_flight = self.fetching.lock().await;
        let max_age = self.fetch("scheduled").await?;
        *write(&self.last_error) = None;
        Ok(max_age)
    }

    async fn discover(&self, configuration_url: &str, issuer: &str) -> Result<String, KeyError> {
        let (body, _) = self.get_json(configuration_url).await?;
        let metadata: CoreProviderMetadata =
            serde_json::from_slice(&body).map_err(|e| KeyError::Discovery(e.to_string()))?;
        let found = metadata.issuer().as_str();
        if found != issuer {
            return Err(KeyError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: found.to_owned(),
            });
        }
        let jwks_uri = metadata.jwks_uri().url().to_string();
        tracing::info!(%issuer, %jwks_uri, "discovered the identity provider");
        Ok(jwks_uri)
    }

    /// Fetches the key set and installs it, counting the fetch by `trigger` and outcome.
    /// Returns the key set's Cache-Control max-age.
    async fn fetch(&self, trigger: &'static str) -> Result<Duration, KeyError> {
        let result = self.fetch_and_install().await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("oidc_jwks_fetches_total", "trigger" => trigger, "outcome" => outcome)
            .increment(1);
        result
    }

    async fn fetch_and_install(&self) -> Result<Duration, KeyError> {
        let Some(jwks_uri) = read(&self.jwks_uri).clone() else {
            return Err(KeyError::Http(
                "the provider has not been discovered yet".into(),
            ));
        };
        let (body, max_age) = self.get_json(&jwks_uri).await?;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let count = self.replace(&set);
        if count == 0 {
            return Err(KeyError::Jwks("no usable signing key".into()));
        }
        tracing::info!(keys = count, "loaded the provider's signing keys");
        Ok(max_age.unwrap_or(self.max_age))
    }

    /// Swaps in the usable keys of `set`; returns how many there are. A set without a
    /// usable key is not installed.
    fn replace(&self, set: &JwkSet) -> usize {
        let keys: HashMap<String, Arc<VerificationKey>> = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, Arc::new(self.usable(jwk)?))))
            .collect();
        let count = keys.len();
        if count == 0 {
            // Keep serving with the keys we have rather than with none.
            return 0;
        }
        let removed = {
            let mut current = write(&self.keys);
            let removed = current.keys.keys().any(|kid| !keys.contains_key(kid));
            *current = Arc::new(KeySet { keys, loaded: true });
            removed
        };
        if let Some(callback) = read(&self.on_change).as_ref() {
            callback(removed);
        }
        count
    }

    // ANCHOR: usable_key
    /// A signing key whose algorithm the settings allow, or `None`.
    fn usable(&self, jwk: &Jwk) -> Option<VerificationKey> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return None;
        }
        let family: &[Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => &[Algorithm::ES256],
                EllipticCurve::P384 => &[Algorithm::ES384],
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                &[Algorithm::EdDSA]
            }
            // Symmetric keys are never used: anyone holding them could sign.
            _ => return None,
        };
        // A key that names its algorithm may be used with that one only.
        let pinned = jwk.common.key_algorithm.and_then(signing_algorithm);
        let algorithms: Vec<Algorithm> = family
            .iter()
            .copied()
            .filter(|alg| pinned.is_none_or(|pinned| pinned == *alg))
            .filter(|alg| self.allowed.contains(alg))
            .collect();
        if algorithms.is_empty() {
            return None;
        }
        let decoding = DecodingKey::from_jwk(jwk).ok()?;
        Some(VerificationKey {
            decoding,
            algorithms,
        })
    }
    // ANCHOR_END: usable_key

    /// GETs a JSON document; returns its body and its Cache-Control max-age.
    async fn get_json(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), KeyError> {
        let request = || {
            self.http
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
        };
        // A pooled connection may have died with a provider restart: retry the GET once.
        let response = match request().await {
            Err(error) if error.is_request() => request().await,
            result => result,
        }
        .map_err(|e| KeyError::Http(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(KeyError::Http(format!(
                "{url} answered {}",
                response.status()
            )));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age);
        let body = response
            .bytes()
            .await
            .map_err(|e| KeyError::Http(e.without_url().to_string()))?;
        Ok((body.to_vec(), max_age))
    }
}

/// The readiness check: up once a key set has been loaded.
pub struct KeysLoaded(pub Arc<KeyStore>);

impl HealthCheck for KeysLoaded {
    fn name(&self) -> &'static str {
        "oidc"
    }

    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        let result = if self.0.is_loaded() {
            Ok(())
        } else {
            Err(read(&self.0.last_error)
                .clone()
                .unwrap_or_else(|| "the provider's keys are not loaded yet".into()))
        };
        Box::pin(std::future::ready(result))
    }
}

fn signing_algorithm(algorithm: KeyAlgorithm) -> Option<Algorithm> {
    Some(match algorithm {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// `max-age` from a Cache-Control value, unless the response may not be stored.
fn max_age(cache_control: &str) -> Option<Duration> {
    let directives: Vec<&str> = cache_control.split(',').map(str::trim).collect();
    if directives
        .iter()
        .any(|d| d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache"))
    {
        return Some(Duration::ZERO);
    }
    directives.iter().find_map(|directive| {
        let (name, value) = directive.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().parse().ok().map(Duration::from_secs))?
    })
}

/// The client for the provider: timeouts, no redirects, system roots plus `OIDC_CA_BUNDLE`.
fn http_client(settings: &AuthSettings) -> Result<reqwest::Client, String> {
    super::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(settings.http_timeout)
        .connect_timeout(settings.http_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ));
    for certificate in &settings.ca_certificates {
        builder = builder.add_root_certificate(certificate.clone());
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::max_age;
    use std::time::Duration;

    #[test]
    fn cache_control_max_age_is_honoured() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
