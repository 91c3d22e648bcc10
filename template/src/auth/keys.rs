//! The provider's signing keys: discovery, the JWKS cache and its refreshes.
//!
//! Keys are fetched in the background, with backoff while the provider is unreachable, and
//! refreshed before the JWKS response's Cache-Control max-age (capped by `OIDC_JWKS_MAX_AGE`)
//! runs out. A token with an unknown `kid`, or whose signature fails under a known one,
//! triggers at most one extra fetch per cooldown, whatever the number of such tokens: one
//! caller fetches while the others wait for its result. A failed fetch keeps the keys
//! already loaded, for at most `OIDC_JWKS_MAX_STALE` after the last successful one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use openidconnect::core::CoreProviderMetadata;
use tokio::sync::Mutex;

use super::settings::AuthSettings;
use crate::health::{CheckResult, HealthCheck};

/// The largest discovery document or key set read from the provider.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// A key ready to verify signatures, with the one algorithm it may be used with.
///
/// A refresh that finds the same key again keeps the same `Arc`, so a verdict can be tied
/// to the key that earned it: when the key changes or leaves, the verdict no longer holds.
pub struct VerificationKey {
    pub kid: String,
    pub algorithm: Algorithm,
    /// The public key, parsed (and checked: an RSA modulus of 2048 to 8192 bits, a point on
    /// the curve) once, for its one algorithm.
    public: ParsedPublicKey,
    /// The published key, to recognise it in the next key set.
    jwk: Jwk,
}

impl VerificationKey {
    /// Whether `signature` signs `message` under this key, with its algorithm.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public.verify_sig(message, signature).is_ok()
    }
}

/// The public key of `jwk` for `algorithm`, in aws-lc-rs's form; `None` when the key is not
/// one `algorithm` can use (a short RSA modulus, a point off the curve, a coordinate of the
/// wrong length).
fn public_key(jwk: &Jwk, algorithm: Algorithm) -> Option<ParsedPublicKey> {
    let bytes = |text: &str| URL_SAFE_NO_PAD.decode(text).ok();
    match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::RSA(rsa), _) => {
            let params: &'static RsaParameters = match algorithm {
                Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return None,
            };
            let (n, e) = (bytes(&rsa.n)?, bytes(&rsa.e)?);
            let unsigned = |value: &[u8]| -> Vec<u8> {
                value
                    .iter()
                    .copied()
                    .skip_while(|byte| *byte == 0)
                    .collect()
            };
            let components = RsaPublicKeyComponents {
                n: unsigned(&n),
                e: unsigned(&e),
            };
            // RFC 8725 §3.5, NIST SP 800-131A: 2048 bits at least; 8192 at most. aws-lc-rs
            // checks the size and the exponent only when it verifies, so a key that would
            // fail every signature is left out here, not loaded.
            let bits = components.n.len() * 8
                - components
                    .n
                    .first()
                    .map_or(0, |top| top.leading_zeros() as usize);
            if !(2048..=8192).contains(&bits) || !is_rsa_exponent(&components.e) {
                return None;
            }
            components.to_parsed_public_key(params).ok()
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256 | Algorithm::ES384) => {
            let (verification, size): (&'static signature::EcdsaVerificationAlgorithm, usize) =
                match algorithm {
                    Algorithm::ES256 => (&signature::ECDSA_P256_SHA256_FIXED, 32),
                    _ => (&signature::ECDSA_P384_SHA384_FIXED, 48),
                };
            let (x, y) = (bytes(&ec.x)?, bytes(&ec.y)?);
            if x.len() != size || y.len() != size {
                return None;
            }
            // SEC 1 §2.3.3: an uncompressed point.
            let point = [&[4][..], &x, &y].concat();
            ParsedPublicKey::new(verification, point).ok()
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            ParsedPublicKey::new(&signature::ED25519, bytes(&okp.x)?).ok()
        }
        _ => None,
    }
}

/// An RSA public exponent (big-endian, no leading zeros) this service accepts: odd, at
/// least 3 and at most 32 bits (65537 in practice). aws-lc-rs would also take 33 bits;
/// no provider publishes such a key.
fn is_rsa_exponent(e: &[u8]) -> bool {
    let odd = e.last().is_some_and(|low| low & 1 == 1);
    odd && (1..=4).contains(&e.len()) && e != [1]
}

/// The keys in use, by `kid`.
pub struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    /// When the keys stop being trusted without a successful fetch; `None` for keys that
    /// never go stale (the development issuer's own).
    trusted_until: Option<Instant>,
}

impl KeySet {
    /// The key for `kid`.
    pub fn get(&self, kid: &str) -> Option<&Arc<VerificationKey>> {
        self.keys.get(kid)
    }

    /// The only key of the set, for tokens that name none.
    pub fn single(&self) -> Option<&Arc<VerificationKey>> {
        let mut keys = self.keys.values();
        match (keys.next(), keys.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// Whether `key` is still the key this set would choose for a token that names it by
    /// `kid` (or names none, when `by_kid` is false).
    pub fn still_uses(&self, key: &Arc<VerificationKey>, by_kid: bool) -> bool {
        let current = if by_kid {
            self.get(&key.kid)
        } else {
            self.single()
        };
        current.is_some_and(|current| Arc::ptr_eq(current, key))
    }

    /// When the keys stop being trusted without a successful fetch.
    pub fn trusted_until(&self) -> Option<Instant> {
        self.trusted_until
    }

    fn is_trusted(&self, now: Instant) -> bool {
        self.trusted_until.is_none_or(|until| now < until)
    }
}

/// The JWKS cache shared by every worker.
pub struct KeyStore {
    /// `None` until a key set is loaded, and again once it went stale.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Changes whenever the keys change or are dropped: what was checked against one key set
    /// holds while this is the number it was checked under.
    generation: AtomicU64,
    /// Where the keys are, once discovery has succeeded.
    jwks_uri: RwLock<Option<String>>,
    /// Held while fetching, so fetches never overlap; records when the last fetch asked for
    /// by a token (unknown `kid`, failed signature) started.
    fetching: Mutex<Option<Instant>>,
    last_error: RwLock<Option<String>>,
    http: reqwest::Client,
    allowed: Vec<Algorithm>,
    cooldown: Duration,
    max_age: Duration,
    max_stale: Duration,
    https_only: bool,
}

/// Why the keys could not be loaded; logged, never shown to callers.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot reach the provider: {0}")]
    Http(String),
    #[error("{url} answered with more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("invalid discovery document: {0}")]
    Discovery(String),
    #[error("discovery names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error(
        "discovery names jwks_uri {0:?}: keys are fetched over https:// only in production (OIDC_ALLOW_HTTP=true allows http://)"
    )]
    InsecureJwksUri(String),
    #[error("invalid JWKS: {0}")]
    Jwks(String),
}

impl KeyStore {
    pub fn new(settings: &AuthSettings) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            keys: RwLock::default(),
            generation: AtomicU64::new(0),
            jwks_uri: RwLock::default(),
            fetching: Mutex::new(None),
            last_error: RwLock::default(),
            http: http_client(settings)?,
            allowed: settings.algorithms.clone(),
            cooldown: settings.jwks_cooldown,
            max_age: settings.jwks_max_age,
            max_stale: settings.jwks_max_stale,
            https_only: settings.https_only,
        }))
    }

    /// The keys to verify with: `None` before the first key set is loaded, and once the last
    /// one fetched is older than `OIDC_JWKS_MAX_STALE`.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.current_with_generation().map(|(set, _)| set)
    }

    /// The current keys' generation, one atomic load: it changes whenever the keys change
    /// or are dropped.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Like [`KeyStore::current`], with the set's generation.
    pub fn current_with_generation(&self) -> Option<(Arc<KeySet>, u64)> {
        let keys = read(&self.keys);
        let generation = self.generation.load(Ordering::Acquire);
        keys.as_ref()
            .filter(|set| set.is_trusted(Instant::now()))
            .map(|set| (Arc::clone(set), generation))
    }

    /// Installs a key set that never goes stale (the development issuer's).
    pub fn install(&self, set: &JwkSet) {
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| self.usable(jwk))
            .map(|key| (key.kid.clone(), key))
            .collect();
        let set = Arc::new(KeySet {
            keys,
            trusted_until: None,
        });
        self.swap(&mut write(&self.keys), Some(set));
    }

    /// Puts `set` in place of the keys `held` (the write-locked slot) and moves on to the
    /// next generation, so that nothing checked against the old keys is trusted any more.
    fn swap(&self, held: &mut Option<Arc<KeySet>>, set: Option<Arc<KeySet>>) {
        *held = set;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Fetches the key set again because a token named an unknown `kid` or failed its
    /// signature under a known one (the provider may have rotated or replaced a key),
    /// unless such a fetch started less than a cooldown ago. Concurrent callers wait for the
    /// fetch in progress instead of starting their own.
    pub async fn refresh_for(&self, trigger: Trigger) {
        let mut last = self.fetching.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        // Boxed: the HTTP request's future is large, and every token verification's future
        // would carry it, fetch or no fetch.
        if let Err(error) = Box::pin(self.fetch(trigger.label())).await {
            tracing::warn!(%error, trigger = trigger.label(), "key refresh failed; keeping the current keys");
        }
    }

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
                    self.drop_if_stale();
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    wait
                }
            };
            tokio::time::sleep(next).await;
        }
    }

    /// Drops keys older than `OIDC_JWKS_MAX_STALE`, saying so once.
    fn drop_if_stale(&self) {
        let mut keys = write(&self.keys);
        if keys
            .as_ref()
            .is_some_and(|set| !set.is_trusted(Instant::now()))
        {
            self.swap(&mut keys, None);
            tracing::warn!(
                max_stale_secs = self.max_stale.as_secs(),
                "the provider has been unreachable for longer than OIDC_JWKS_MAX_STALE: its keys are dropped and protected routes answer 503 until it is back"
            );
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
        if self.https_only && !jwks_uri.starts_with("https://") {
            return Err(KeyError::InsecureJwksUri(jwks_uri));
        }
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
        // Each key on its own: one key this service cannot read does not spoil the set.
        #[derive(serde::Deserialize)]
        struct Published {
            keys: Vec<serde_json::Value>,
        }
        let published: Published =
            serde_json::from_slice(&body).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let jwks: Vec<Jwk> = published
            .keys
            .into_iter()
            .filter_map(|key| serde_json::from_value(key).ok())
            .collect();
        let count = self.replace(&jwks);
        if count == 0 {
            return Err(KeyError::Jwks("no usable signing key".into()));
        }
        tracing::info!(keys = count, "loaded the provider's signing keys");
        Ok(max_age.unwrap_or(self.max_age))
    }

    /// Swaps in the usable keys of `jwks`, trusted for `OIDC_JWKS_MAX_STALE` from now;
    /// returns how many there are. A key the current set already holds keeps its `Arc`,
    /// and a set of the same keys keeps the generation, so what was checked against them
    /// still holds. A set without a usable key is not installed.
    fn replace(&self, jwks: &[Jwk]) -> usize {
        let mut current = write(&self.keys);
        let keys: HashMap<String, Arc<VerificationKey>> = jwks
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.as_deref()?;
                let unchanged = current
                    .as_ref()
                    .and_then(|set| set.get(kid))
                    .filter(|known| known.jwk == *jwk)
                    .cloned();
                unchanged.or_else(|| self.usable(jwk))
            })
            .map(|key| (key.kid.clone(), key))
            .collect();
        let count = keys.len();
        if count > 0 {
            let unchanged = current.as_ref().is_some_and(|set| {
                set.keys.len() == count
                    && keys
                        .iter()
                        .all(|(kid, key)| set.get(kid).is_some_and(|known| Arc::ptr_eq(known, key)))
            });
            let set = Arc::new(KeySet {
                keys,
                trusted_until: Some(Instant::now() + self.max_stale),
            });
            if unchanged {
                *current = Some(set);
            } else {
                self.swap(&mut current, Some(set));
            }
        }
        count
    }

    /// A verification key whose algorithm the settings allow, or `None` (RFC 7517 §4.2-4.4,
    /// RFC 8725 §3.1): `use` absent or `sig`, `key_ops` absent or holding `verify`, `alg`
    /// absent or a signature algorithm of the key's type, and a `kid`.
    fn usable(&self, jwk: &Jwk) -> Option<Arc<VerificationKey>> {
        let kid = jwk.common.key_id.clone()?;
        if !matches!(
            jwk.common.public_key_use,
            None | Some(PublicKeyUse::Signature)
        ) {
            return None;
        }
        if let Some(operations) = &jwk.common.key_operations
            && !operations.contains(&KeyOperations::Verify)
        {
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
        // RFC 8725 §3.1: a key is used with exactly one algorithm. A key that names its
        // algorithm gets that one, if it is a signature algorithm of its type (not RSA-OAEP,
        // ECDH-ES, ...); one that names none gets the first of OIDC_ALGORITHMS its type can
        // do (EC and Ed25519 keys have one anyway; an RSA key would otherwise have six).
        let algorithm = match jwk.common.key_algorithm {
            Some(named) => signing_algorithm(named).filter(|alg| family.contains(alg))?,
            None => *self.allowed.iter().find(|alg| family.contains(alg))?,
        };
        if !self.allowed.contains(&algorithm) {
            return None;
        }
        let public = public_key(jwk, algorithm)?;
        Some(Arc::new(VerificationKey {
            kid,
            algorithm,
            public,
            jwk: jwk.clone(),
        }))
    }

    /// GETs a JSON document of at most [`MAX_DOCUMENT_BYTES`]; returns its body and its
    /// Cache-Control max-age.
    async fn get_json(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), KeyError> {
        let request = || {
            self.http
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
        };
        let http_error = |error: reqwest::Error| KeyError::Http(error.without_url().to_string());
        // A pooled connection may have died with a provider restart: retry the GET once.
        let mut response = match request().await {
            Err(error) if error.is_request() => request().await,
            result => result,
        }
        .map_err(http_error)?;
        if !response.status().is_success() {
            return Err(KeyError::Http(format!(
                "{url} answered {}",
                response.status()
            )));
        }
        let too_large = || KeyError::TooLarge {
            url: url.to_owned(),
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

/// Why a token asked for the keys to be fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The token names a `kid` the current set lacks: perhaps a rotation.
    UnknownKid,
    /// The token's signature failed under a known `kid`: perhaps the key was replaced.
    Signature,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Self::UnknownKid => "unknown_kid",
            Self::Signature => "signature",
        }
    }
}

/// The readiness check: up while a trusted key set is loaded. Why it is down goes to the
/// log, never into the probe's answer.
pub struct KeysLoaded(pub Arc<KeyStore>);

impl HealthCheck for KeysLoaded {
    fn name(&self) -> &'static str {
        "oidc"
    }

    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        let result = if self.0.current().is_some() {
            Ok(())
        } else {
            Err(read(&self.0.last_error)
                .clone()
                .unwrap_or_else(|| "the provider's keys are not loaded".into()))
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

/// The client for the provider: timeouts, no redirects, https only in production, system
/// roots plus `OIDC_CA_BUNDLE`.
fn http_client(settings: &AuthSettings) -> Result<reqwest::Client, String> {
    super::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(settings.http_timeout)
        .connect_timeout(settings.http_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(settings.https_only)
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
pub(super) mod tests {
    use super::*;
    use crate::settings::tests::settings;

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

    /// A P-256 public key (RFC 7515 appendix A.3) with `extra` members.
    fn ec_key(extra: serde_json::Value) -> Jwk {
        let mut jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "k",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        jwk.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(jwk).unwrap()
    }

    /// The key a store with the default settings makes of `jwk`, if it uses it.
    fn usable(jwk: &Jwk) -> Option<Arc<VerificationKey>> {
        let store = KeyStore::new(&settings(&[]).unwrap().auth).unwrap();
        store.usable(jwk)
    }

    /// A key the store accepts: the P-256 key of RFC 7515 appendix A.3, for ES256.
    pub(in crate::auth) fn sample_key() -> Arc<VerificationKey> {
        usable(&ec_key(serde_json::json!({}))).expect("a usable key")
    }

    fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
        usable(jwk).map(|key| key.algorithm)
    }

    #[test]
    fn only_verification_keys_verify() {
        use serde_json::json;
        let es256 = Some(Algorithm::ES256);
        assert_eq!(algorithm_of(&ec_key(json!({}))), es256);
        assert_eq!(algorithm_of(&ec_key(json!({ "use": "sig" }))), es256);
        assert_eq!(
            algorithm_of(&ec_key(json!({ "key_ops": ["verify"], "alg": "ES256" }))),
            es256
        );
        for refused in [
            json!({ "use": "enc" }),
            json!({ "use": "other" }),
            json!({ "key_ops": ["encrypt", "wrapKey"] }),
            json!({ "key_ops": [] }),
            // Encryption algorithms on an EC key: ECDH-ES is not a signature algorithm.
            json!({ "alg": "ECDH-ES" }),
            json!({ "alg": "ECDH-ES+A256KW" }),
            // A signature algorithm of another key type.
            json!({ "alg": "RS256" }),
            json!({ "alg": "ES384" }),
            json!({ "alg": "HS256" }),
        ] {
            assert_eq!(algorithm_of(&ec_key(refused.clone())), None, "{refused}");
        }
    }

    #[test]
    fn a_key_that_cannot_verify_is_not_used() {
        use serde_json::json;
        for broken in [
            // RFC 7515 appendix A.3's x with another y: a point off the curve.
            json!({ "y": "AAAAzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }),
            // A coordinate one byte short.
            json!({ "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVQ" }),
            json!({ "x": "not base64url!" }),
        ] {
            assert_eq!(algorithm_of(&ec_key(broken.clone())), None, "{broken}");
        }
        // RSA with a 1024-bit modulus: too short.
        let short: Jwk = serde_json::from_value(json!({
            "kty": "RSA", "kid": "short", "e": "AQAB",
            "n": "w8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8M"
        }))
        .unwrap();
        assert_eq!(algorithm_of(&short), None);
        // RFC 7517 appendix A.1's 2048-bit key, with a 2047-bit modulus (still 256 bytes),
        // which would fail every signature, and with exponents that are even, 1 or longer
        // than 32 bits.
        let rfc_n = URL_SAFE_NO_PAD.decode(RFC_7517_N).unwrap();
        let mut n_2047 = rfc_n.clone();
        n_2047[0] = 0x7f;
        let rsa = |n: &[u8], e: &[u8]| -> Jwk {
            serde_json::from_value(json!({
                "kty": "RSA", "kid": "r",
                "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
            }))
            .unwrap()
        };
        assert_eq!(
            algorithm_of(&rsa(&rfc_n, &[1, 0, 1])),
            Some(Algorithm::RS256)
        );
        assert_eq!(algorithm_of(&rsa(&n_2047, &[1, 0, 1])), None, "2047 bits");
        for e in [&[1, 0, 0][..], &[1], &[1, 0, 0, 0, 1]] {
            assert_eq!(algorithm_of(&rsa(&rfc_n, e)), None, "e = {e:?}");
        }
    }

    /// The modulus of RFC 7517 appendix A.1's RSA key: 2048 bits.
    const RFC_7517_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn an_rsa_encryption_key_never_verifies() {
        let rsa = |alg: &str| -> Jwk {
            serde_json::from_value(serde_json::json!({
                "kty": "RSA", "kid": "r", "alg": alg, "e": "AQAB",
                "n": RFC_7517_N
            }))
            .unwrap()
        };
        assert_eq!(algorithm_of(&rsa("PS256")), Some(Algorithm::PS256));
        for encryption in ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"] {
            assert_eq!(algorithm_of(&rsa(encryption)), None, "{encryption}");
        }
    }

    #[test]
    fn a_key_gets_exactly_one_algorithm() {
        let mut rsa: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "kid": "r", "e": "AQAB",
            "n": RFC_7517_N
        }))
        .unwrap();
        // No alg: the first RSA algorithm OIDC_ALGORITHMS lists, and only that one.
        assert_eq!(algorithm_of(&rsa), Some(Algorithm::RS256));
        let ps_first = settings(&[("OIDC_ALGORITHMS", "ES256,PS384,RS256")]).unwrap();
        let store = KeyStore::new(&ps_first.auth).unwrap();
        assert_eq!(
            store.usable(&rsa).map(|key| key.algorithm),
            Some(Algorithm::PS384)
        );
        // A named algorithm the settings do not allow leaves the key unused.
        rsa.common.key_algorithm = Some(KeyAlgorithm::RS512);
        let rs256_only = settings(&[("OIDC_ALGORITHMS", "RS256")]).unwrap();
        let store = KeyStore::new(&rs256_only.auth).unwrap();
        assert!(store.usable(&rsa).is_none());
    }

    #[test]
    fn a_refresh_keeps_unchanged_keys_and_replaces_changed_ones() {
        let store = KeyStore::new(&settings(&[]).unwrap().auth).unwrap();
        let original = ec_key(serde_json::json!({}));
        store.replace(std::slice::from_ref(&original));
        let first = Arc::clone(store.current().unwrap().get("k").unwrap());

        let generation = store.generation();
        store.replace(std::slice::from_ref(&original));
        let set = store.current().unwrap();
        assert!(
            set.still_uses(&first, true),
            "the same key keeps its identity"
        );
        assert_eq!(
            store.generation(),
            generation,
            "the same keys keep what was checked against them"
        );

        // Another public key under the same kid (RFC 7517 appendix A.1's).
        let replaced = ec_key(serde_json::json!({
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
        }));
        store.replace(std::slice::from_ref(&replaced));
        let set = store.current().unwrap();
        assert!(
            !set.still_uses(&first, true),
            "a replaced key does not vouch any more"
        );
        assert_ne!(store.generation(), generation);
        // A key added to the same set is a change too.
        let generation = store.generation();
        let mut added = original.clone();
        added.common.key_id = Some("k2".into());
        store.replace(&[replaced, added]);
        assert_ne!(store.generation(), generation, "a key added");
    }
}
