//! Token validation: the one place that decides whether a bearer token is accepted.
//!
//! The algorithm comes from the key (and the allow-list), never from the token header
//! alone; `none` and HMAC are refused; `iss` must match exactly, `aud` must contain the
//! configured audience, `exp` is required and `nbf` checked with a small leeway.
//! A verified token is remembered, keyed by its SHA-256, until it expires, so a client that
//! sends it again skips the signature check.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use moka::sync::Cache;

use super::claims::{AccessToken, Claims};
use super::error::{AuthError, Rejection};
use super::keys::KeyStore;
use super::settings::AuthSettings;

/// Validates bearer tokens against the provider's keys. Shared by every worker.
pub struct TokenValidator {
    keys: Arc<KeyStore>,
    client_id: Option<String>,
    /// The claim checks for each accepted algorithm, built once (jsonwebtoken ties a
    /// `Validation` to one algorithm family).
    validations: Vec<(Algorithm, Validation)>,
    require_at_jwt: bool,
    max_token_bytes: usize,
    verified: Option<Cache<[u8; 32], AccessToken>>,
}

impl TokenValidator {
    pub fn new(settings: &AuthSettings, keys: Arc<KeyStore>, issuer: String) -> Arc<Self> {
        let verified = (settings.token_cache_size > 0).then(|| {
            Cache::builder()
                .max_capacity(settings.token_cache_size)
                .expire_after(UntilExpiry)
                .build()
        });
        let validator = Arc::new(Self {
            keys: Arc::clone(&keys),
            client_id: settings.client_id.clone(),
            validations: settings
                .algorithms
                .iter()
                .map(|algorithm| (*algorithm, validation(*algorithm, settings, &issuer)))
                .collect(),
            require_at_jwt: settings.require_at_jwt,
            max_token_bytes: settings.max_token_bytes,
            verified,
        });
        // A key that left the set must not keep vouching for tokens it signed.
        let weak = Arc::downgrade(&validator);
        keys.on_change(move |removed| {
            if removed
                && let Some(validator) = weak.upgrade()
                && let Some(cache) = &validator.verified
            {
                cache.invalidate_all();
            }
        });
        validator
    }

    /// Accepts or refuses a bearer token. Every refusal is logged with its reason, the
    /// token's `kid` and `iss`; never the token itself.
    pub async fn validate(&self, token: &str) -> Result<AccessToken, AuthError> {
        let result = self.check(token).await;
        if let Err(AuthError::InvalidToken(reason)) = &result {
            let (kid, iss) = unverified_kid_and_issuer(token);
            tracing::warn!(reason = reason.code(), kid, iss, "bearer token rejected");
        }
        result
    }

    async fn check(&self, token: &str) -> Result<AccessToken, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::InvalidToken(Rejection::TooLarge));
        }
        let fingerprint = self.verified.as_ref().map(|_| fingerprint(token));
        if let (Some(cache), Some(fingerprint)) = (&self.verified, &fingerprint)
            && let Some(known) = cache.get(fingerprint)
        {
            return Ok(known);
        }

        // ANCHOR: checks
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken(Rejection::Malformed))?;
        if self.require_at_jwt && !is_at_jwt(header.typ.as_deref()) {
            return Err(AuthError::InvalidToken(Rejection::Type));
        }
        if !self.keys.is_loaded() {
            return Err(AuthError::KeysUnavailable);
        }
        let key = match &header.kid {
            Some(kid) => match self.keys.get(kid) {
                Some(key) => key,
                None => {
                    // Perhaps the provider rotated its keys: look again, at most once per cooldown.
                    self.keys.refresh_for_unknown_kid().await;
                    self.keys
                        .get(kid)
                        .ok_or(AuthError::InvalidToken(Rejection::UnknownKey))?
                }
            },
            None => self
                .keys
                .single()
                .ok_or(AuthError::InvalidToken(Rejection::UnknownKey))?,
        };
        // The header only chooses among the algorithms the key itself allows.
        if !key.algorithms.contains(&header.alg) {
            return Err(AuthError::InvalidToken(Rejection::Algorithm));
        }

        let validation = self
            .validations
            .iter()
            .find_map(|(algorithm, validation)| (*algorithm == header.alg).then_some(validation))
            .ok_or(AuthError::InvalidToken(Rejection::Algorithm))?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
            .map_err(|error| AuthError::InvalidToken(rejection(error.kind())))?
            .claims;
        // ANCHOR_END: checks

        let token_value = AccessToken::new(claims, self.client_id.as_deref());
        if let (Some(cache), Some(fingerprint)) = (&self.verified, fingerprint) {
            cache.insert(fingerprint, token_value.clone());
        }
        Ok(token_value)
    }
}

/// What a token signed with `algorithm` must satisfy: exactly `issuer`, the audience when
/// one is configured, `exp` and `nbf` within the leeway, and `exp`, `iss` and `sub` present.
fn validation(algorithm: Algorithm, settings: &AuthSettings, issuer: &str) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = settings.leeway.as_secs();
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    let mut required = vec!["exp", "iss", "sub"];
    match &settings.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

fn rejection(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::InvalidSignature => Rejection::Signature,
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidIssuer => Rejection::Issuer,
        ErrorKind::InvalidAudience => Rejection::Audience,
        ErrorKind::MissingRequiredClaim(_) => Rejection::MissingClaim,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Rejection::Algorithm,
        ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => Rejection::Claims,
        _ => Rejection::Malformed,
    }
}

/// RFC 9068 §4: `at+jwt`, or its full media type.
fn is_at_jwt(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
    })
}

fn fingerprint(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest
        .as_ref()
        .try_into()
        .expect("SHA-256 digests are 32 bytes")
}

/// For the rejection log line only: `kid` and `iss` as the token claims them, unverified
/// and cut short, so a hostile token cannot flood the log.
fn unverified_kid_and_issuer(token: &str) -> (String, String) {
    fn short(text: Option<String>) -> String {
        text.unwrap_or_default().chars().take(128).collect()
    }
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
    #[derive(serde::Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    let iss = jsonwebtoken::dangerous::insecure_decode::<Issuer>(token)
        .ok()
        .and_then(|data| data.claims.iss);
    (short(kid), short(iss))
}

/// Cache entries live until their token expires, and no longer.
struct UntilExpiry;

impl moka::Expiry<[u8; 32], AccessToken> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        token: &AccessToken,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = u64::try_from(token.exp).unwrap_or(0);
        Some(Duration::from_secs(exp.saturating_sub(now)))
    }
}
