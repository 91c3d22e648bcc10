//! Token validation: the one place that decides whether a bearer token is accepted.
//!
//! The algorithm comes from the key (and the allow-list), never from the token header
//! alone; `none` and HMAC are refused; `iss` must match exactly, `aud` must contain the
//! configured audience, `exp` is required, `nbf` and `iat` are checked with a small leeway,
//! and a token must be an access token (not an ID token or another kind of JWT).
//! A verified token is remembered, keyed by its SHA-256, until it expires and only while the
//! key that verified it is still the provider's, so a client that sends it again skips the
//! signature check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use moka::sync::Cache;

use super::claims::{AccessToken, Claims, RoleSources};
use super::error::{AuthError, Rejection};
use super::keys::{KeySet, KeyStore, Trigger, VerificationKey};
use super::settings::AuthSettings;

/// Validates bearer tokens against the provider's keys. Shared by every worker.
pub struct TokenValidator {
    keys: Arc<KeyStore>,
    roles: RoleSources,
    allowed_clients: Option<Vec<String>>,
    /// The claim checks for each accepted algorithm, built once (jsonwebtoken ties a
    /// `Validation` to one algorithm family).
    validations: Vec<(Algorithm, Validation)>,
    require_at_jwt: bool,
    leeway: Duration,
    max_token_bytes: usize,
    verified: Option<Cache<[u8; 32], Verified>>,
    rejections: SampledLog,
}

/// A cached verdict: the token's claims and the key that verified its signature.
#[derive(Clone)]
struct Verified {
    token: AccessToken,
    key: Arc<VerificationKey>,
    /// Whether the token named its key (`kid`) or was verified by the set's only key.
    by_kid: bool,
}

impl TokenValidator {
    pub fn new(settings: &AuthSettings, keys: Arc<KeyStore>, issuer: String) -> Arc<Self> {
        let verified = (settings.token_cache_size > 0).then(|| {
            Cache::builder()
                .max_capacity(settings.token_cache_size)
                .expire_after(UntilExpiry)
                .build()
        });
        Arc::new(Self {
            keys,
            roles: RoleSources {
                client_id: settings.client_id.clone(),
                realm_roles: settings.realm_roles,
            },
            allowed_clients: settings.allowed_clients.clone(),
            validations: settings
                .algorithms
                .iter()
                .map(|algorithm| (*algorithm, validation(*algorithm, settings, &issuer)))
                .collect(),
            require_at_jwt: settings.require_at_jwt,
            leeway: settings.leeway,
            max_token_bytes: settings.max_token_bytes,
            verified,
            rejections: SampledLog::default(),
        })
    }

    /// Accepts or refuses a bearer token. Refusals are logged with their reason, the
    /// token's `kid` and `iss` (never the token itself), at most [`LOG_LINES_PER_SECOND`]
    /// lines a second; a line after a burst says how many were left out.
    pub async fn validate(&self, token: &str) -> Result<AccessToken, AuthError> {
        let result = self.check(token).await;
        if let Err(AuthError::InvalidToken(reason)) = &result
            && let Some(suppressed) = self.rejections.admit()
        {
            // An oversize token is not even decoded for the log.
            let (kid, iss) = match reason {
                Rejection::TooLarge => (String::new(), String::new()),
                _ => unverified_kid_and_issuer(token),
            };
            tracing::warn!(
                reason = reason.code(),
                kid,
                iss,
                suppressed,
                "bearer token rejected"
            );
        }
        result
    }

    async fn check(&self, token: &str) -> Result<AccessToken, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::InvalidToken(Rejection::TooLarge));
        }
        if !is_token68(token) {
            return Err(AuthError::InvalidToken(Rejection::Malformed));
        }
        let fingerprint = self.verified.as_ref().map(|_| fingerprint(token));
        if let (Some(cache), Some(fingerprint)) = (&self.verified, &fingerprint)
            && let Some(known) = cache.get(fingerprint)
        {
            let keys = self.keys.current().ok_or(AuthError::KeysUnavailable)?;
            // A verdict holds only while the key that earned it is still the provider's.
            if keys.still_uses(&known.key, known.by_kid) {
                return Ok(known.token);
            }
            cache.invalidate(fingerprint);
        }

        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken(Rejection::Malformed))?;
        self.check_header(&header)
            .map_err(AuthError::InvalidToken)?;
        let keys = self.keys.current().ok_or(AuthError::KeysUnavailable)?;
        let (mut key, by_kid) = self.key_for(&header, keys).await?;
        let claims = match self.verify(token, &header, &key) {
            // Perhaps the provider replaced the key under the same kid: look again, at most
            // once per cooldown, and check once more if the key did change.
            Err(Rejection::Signature) => {
                self.keys.refresh_for(Trigger::Signature).await;
                let keys = self.keys.current().ok_or(AuthError::KeysUnavailable)?;
                let fresh = match &header.kid {
                    Some(kid) => keys.get(kid),
                    None => keys.single(),
                };
                match fresh {
                    Some(fresh) if !Arc::ptr_eq(fresh, &key) => {
                        key = Arc::clone(fresh);
                        self.verify(token, &header, &key)
                    }
                    _ => Err(Rejection::Signature),
                }
            }
            verdict => verdict,
        }
        .map_err(AuthError::InvalidToken)?;
        self.check_claims(&claims)
            .map_err(AuthError::InvalidToken)?;

        let token_value = AccessToken::new(claims, &self.roles);
        if let (Some(cache), Some(fingerprint)) = (&self.verified, fingerprint) {
            let verdict = Verified {
                token: token_value.clone(),
                key,
                by_kid,
            };
            cache.insert(fingerprint, verdict);
        }
        Ok(token_value)
    }

    /// RFC 7515 §4.1.11: a `crit` parameter lists extensions the verifier must understand,
    /// and this one understands none. RFC 8725 §3.11: an explicit type other than an access
    /// token's (`id+jwt`, `logout+jwt`, `dpop+jwt`, ...) is another kind of JWT.
    fn check_header(&self, header: &Header) -> Result<(), Rejection> {
        if header.crit.is_some() {
            return Err(Rejection::CriticalHeader);
        }
        let typ = header.typ.as_deref();
        if self.require_at_jwt && !is_at_jwt(typ) {
            return Err(Rejection::Type);
        }
        if typ.is_some_and(|typ| names_another_jwt(typ) && !is_at_jwt(Some(typ))) {
            return Err(Rejection::NotAccessToken);
        }
        Ok(())
    }

    /// The key the header names by `kid` (fetching the key set again for an unknown one),
    /// or the set's only key; and whether it was named.
    async fn key_for(
        &self,
        header: &Header,
        keys: Arc<KeySet>,
    ) -> Result<(Arc<VerificationKey>, bool), AuthError> {
        let Some(kid) = &header.kid else {
            let only = keys
                .single()
                .ok_or(AuthError::InvalidToken(Rejection::UnknownKey))?;
            return Ok((Arc::clone(only), false));
        };
        if let Some(key) = keys.get(kid) {
            return Ok((Arc::clone(key), true));
        }
        // Perhaps the provider rotated its keys: look again, at most once per cooldown.
        self.keys.refresh_for(Trigger::UnknownKid).await;
        let keys = self.keys.current().ok_or(AuthError::KeysUnavailable)?;
        let key = keys
            .get(kid)
            .ok_or(AuthError::InvalidToken(Rejection::UnknownKey))?;
        Ok((Arc::clone(key), true))
    }

    /// The signature, then the registered claims jsonwebtoken checks. The header only
    /// chooses among the algorithms the key itself allows.
    fn verify(
        &self,
        token: &str,
        header: &Header,
        key: &VerificationKey,
    ) -> Result<Claims, Rejection> {
        if key.algorithm != header.alg {
            return Err(Rejection::Algorithm);
        }
        let validation = self
            .validations
            .iter()
            .find_map(|(algorithm, validation)| (*algorithm == header.alg).then_some(validation))
            .ok_or(Rejection::Algorithm)?;
        jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
            .map(|data| data.claims)
            .map_err(|error| rejection(error.kind()))
    }

    /// What jsonwebtoken leaves to the application: the token is an access token (Keycloak's
    /// payload `typ`; no ID-token hashes unless `at+jwt` already proved the type), it was not
    /// issued in the future, and it names a client that is allowed to call.
    fn check_claims(&self, claims: &Claims) -> Result<(), Rejection> {
        if claims
            .typ
            .as_deref()
            .is_some_and(|typ| !typ.eq_ignore_ascii_case("Bearer"))
        {
            return Err(Rejection::NotAccessToken);
        }
        if !self.require_at_jwt
            && (claims.extra.contains_key("at_hash") || claims.extra.contains_key("c_hash"))
        {
            return Err(Rejection::NotAccessToken);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let latest = i64::try_from(now.saturating_add(self.leeway.as_secs())).unwrap_or(i64::MAX);
        if claims.iat.is_some_and(|iat| iat > latest) {
            return Err(Rejection::IssuedInFuture);
        }
        if let Some(allowed) = &self.allowed_clients {
            // The token must name its client, and every client it names must be listed.
            let named: Vec<&String> = [&claims.azp, &claims.client_id]
                .into_iter()
                .flatten()
                .collect();
            if named.is_empty() || named.iter().any(|client| !allowed.contains(client)) {
                return Err(Rejection::Client);
            }
        }
        Ok(())
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

/// RFC 6750 §2.1 `b64token`: letters, digits and `-._~+/`, then optional `=` padding.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
    !body.is_empty() && body.bytes().all(allowed)
}

/// RFC 9068 §4: `at+jwt`, or its full media type.
fn is_at_jwt(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
    })
}

/// A `typ` of the form `[application/]<kind>+jwt` (RFC 7515 §4.1.9 lets the prefix go).
/// Compared as bytes: the header is the sender's, and need not be ASCII.
fn names_another_jwt(typ: &str) -> bool {
    let typ = typ.as_bytes();
    typ.len() > 4 && typ[typ.len() - 4..].eq_ignore_ascii_case(b"+jwt")
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

/// At most this many refusals are logged a second; `auth_rejections_total` counts them all.
pub const LOG_LINES_PER_SECOND: u32 = 20;

/// Lets [`LOG_LINES_PER_SECOND`] lines through each second and counts the rest, so a flood
/// of bad tokens cannot fill the disk.
#[derive(Default)]
struct SampledLog {
    second: AtomicU64,
    logged: AtomicU32,
    suppressed: AtomicU64,
}

impl SampledLog {
    /// `Some(lines left out since the last one logged)` when this line may be logged.
    fn admit(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let second = self.second.load(Ordering::Relaxed);
        if second != now
            && self
                .second
                .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.logged.store(0, Ordering::Relaxed);
        }
        if self.logged.fetch_add(1, Ordering::Relaxed) < LOG_LINES_PER_SECOND {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Cache entries live until their token expires, and no longer.
struct UntilExpiry;

impl moka::Expiry<[u8; 32], Verified> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        verdict: &Verified,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = u64::try_from(verdict.token.exp).unwrap_or(0);
        Some(Duration::from_secs(exp.saturating_sub(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_types_of_other_jwts_are_recognised() {
        for other in [
            "id+jwt",
            "logout+jwt",
            "application/secevent+jwt",
            "DPoP+JWT",
        ] {
            assert!(names_another_jwt(other), "{other}");
        }
        for access in ["JWT", "jwt", "at+jwt"] {
            assert!(
                !names_another_jwt(access) || is_at_jwt(Some(access)),
                "{access}"
            );
        }
        // Not ASCII: no panic, and no JWT type.
        for odd in ["€€", "é+jwt", "+jwt€"] {
            assert_eq!(names_another_jwt(odd), odd == "é+jwt", "{odd}");
        }
    }

    #[test]
    fn a_token_must_be_a_b64token() {
        assert!(is_token68("abc.def-_~+/="));
        for bad in ["", "a b", "{\"x\":1}", "==", "é.b.c"] {
            assert!(!is_token68(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_flood_of_refusals_is_sampled_and_counted() {
        let log = SampledLog::default();
        let admitted: Vec<Option<u64>> = (0..1000).map(|_| log.admit()).collect();
        let logged = admitted.iter().filter(|line| line.is_some()).count();
        // The loop may straddle a second boundary: at most two seconds' worth.
        assert!(
            (LOG_LINES_PER_SECOND as usize..=2 * LOG_LINES_PER_SECOND as usize).contains(&logged),
            "{logged}"
        );
        let reported: u64 = admitted.iter().flatten().sum();
        let pending = log.suppressed.load(Ordering::Relaxed);
        assert_eq!(logged as u64 + reported + pending, 1000, "nothing is lost");
    }
}
