//! Token validation: the one place that decides whether a bearer token is accepted.
//!
//! The token is a compact JWS (RFC 7515 §7.1): three parts, split once and decoded once. The
//! algorithm comes from the key (and the allow-list), never from the token header alone;
//! `none` and HMAC are refused. The signature is checked with aws-lc-rs against the key as
//! parsed when it was fetched. Then the claims, parsed once: `iss` must match exactly, `aud`
//! must contain the configured audience, `exp` is required, `nbf` and `iat` are checked with
//! a small leeway, and a token must be an access token (not an ID token or another kind of
//! JWT). A verified token may be remembered (`cache.rs`), so a client that sends it again
//! skips the signature check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};

use super::cache::{CacheUsage, TokenCache, TokenKey, Verdict, unix_now};
use super::claims::{ABSENT, AccessToken, Claims, RoleSources};
use super::error::{AuthError, Rejection};
use super::keys::{KeyStore, Trigger, VerificationKey};
use super::settings::AuthSettings;

/// Validates bearer tokens against the provider's keys. Shared by every worker.
pub struct TokenValidator {
    keys: Arc<KeyStore>,
    roles: RoleSources,
    allowed_clients: Option<Vec<String>>,
    algorithms: Vec<Algorithm>,
    issuer: String,
    audience: Option<String>,
    require_at_jwt: bool,
    /// `OIDC_LEEWAY`, in seconds.
    leeway: i64,
    max_token_bytes: usize,
    cache: Option<TokenCache>,
    rejections: SampledLog,
}

/// A compact JWS split into its three parts, its header decoded.
struct Jws<'a> {
    header: Header,
    /// `header.payload`, as signed.
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Jws<'a> {
    fn parse(token: &'a str) -> Result<Self, Rejection> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(Rejection::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(Rejection::Malformed)?;
        if payload.contains('.') {
            return Err(Rejection::Malformed);
        }
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(Rejection::Malformed)?;
        Ok(Self {
            header,
            signing_input,
            payload,
            signature,
        })
    }
}

/// What [`TokenValidator::judge`] made of a token with the keys at hand.
pub enum Judgement {
    /// Accepted, or refused (and the refusal logged).
    Done(Result<AccessToken, AuthError>),
    /// To be judged once the key set is fetched again, by
    /// [`TokenValidator::judge_after_fetch`].
    FetchKeys(KeyFetch),
}

/// Why a token waits for the key set to be fetched again.
pub struct KeyFetch {
    trigger: Trigger,
    /// The key the token's signature failed under.
    failed: Option<Arc<VerificationKey>>,
}

impl KeyFetch {
    /// What the token is refused for if the fetch did not help.
    fn refusal(&self) -> Rejection {
        match self.trigger {
            Trigger::UnknownKid => Rejection::UnknownKey,
            Trigger::Signature => Rejection::Signature,
        }
    }
}

/// Why a check stopped before accepting a token.
enum Stop {
    Refused(AuthError),
    Fetch(KeyFetch),
}

fn refused(rejection: Rejection) -> Stop {
    Stop::Refused(AuthError::InvalidToken(rejection))
}

impl TokenValidator {
    pub fn new(settings: &AuthSettings, keys: Arc<KeyStore>, issuer: String) -> Arc<Self> {
        Arc::new(Self {
            keys,
            roles: RoleSources {
                client_id: settings.client_id.clone(),
                realm_roles: settings.realm_roles,
            },
            allowed_clients: settings.allowed_clients.clone(),
            algorithms: settings.algorithms.clone(),
            issuer,
            audience: settings.audience.clone(),
            require_at_jwt: settings.require_at_jwt,
            leeway: i64::try_from(settings.leeway.as_secs()).unwrap_or(i64::MAX),
            max_token_bytes: settings.max_token_bytes,
            cache: TokenCache::new(settings.token_cache_bytes),
            rejections: SampledLog::default(),
        })
    }

    /// Accepts or refuses a bearer token. Refusals are logged with their reason, the
    /// token's `kid` and `iss` (never the token itself), at most [`LOG_LINES_PER_SECOND`]
    /// lines a second; a line after a burst says how many were left out.
    pub async fn validate(&self, token: &str) -> Result<AccessToken, AuthError> {
        if let Some(token) = self.recent(token.as_bytes()) {
            return Ok(token);
        }
        match self.judge(token) {
            Judgement::Done(verdict) => verdict,
            Judgement::FetchKeys(fetch) => self.judge_after_fetch(token, fetch).await,
        }
    }

    /// The token, if this thread accepted it lately and nothing has changed since (its
    /// copy in front of the verified-token cache, `cache.rs`): no lock, nothing to wait
    /// for, and no UTF-8 check, since the same bytes as a verified token are that token.
    /// `None` leaves the token to [`TokenValidator::judge`].
    pub fn recent(&self, token: &[u8]) -> Option<AccessToken> {
        let cache = self.cache.as_ref()?;
        if token.len() > self.max_token_bytes {
            return None;
        }
        cache.recent(token, self.keys.generation())
    }

    /// Judges a token that [`TokenValidator::recent`] did not know with the keys at hand,
    /// at once: the verdict, or the key fetch it waits for first, which
    /// [`TokenValidator::judge_after_fetch`] does. A token waits when its `kid` is not in the
    /// key set, or its signature fails under the key it names (the provider may have rotated
    /// or replaced its keys); any other token is judged without a future to poll.
    pub fn judge(&self, token: &str) -> Judgement {
        match self.check(token, None) {
            Ok(token) => Judgement::Done(Ok(token)),
            Err(Stop::Refused(error)) => Judgement::Done(Err(self.logged(token, error))),
            Err(Stop::Fetch(fetch)) => Judgement::FetchKeys(fetch),
        }
    }

    /// Fetches the key set again (unless a fetch started less than a cooldown ago) and
    /// judges the token with what it holds then: a token is sent for the keys once at most.
    pub async fn judge_after_fetch(
        &self,
        token: &str,
        fetch: KeyFetch,
    ) -> Result<AccessToken, AuthError> {
        self.keys.refresh_for(fetch.trigger).await;
        self.check(token, Some(&fetch)).map_err(|stop| {
            let error = match stop {
                Stop::Refused(error) => error,
                // Still wanting keys after the fetch: refused for what it wanted.
                Stop::Fetch(again) => AuthError::InvalidToken(again.refusal()),
            };
            self.logged(token, error)
        })
    }

    /// Logs a refusal with its reason, the token's `kid` and `iss`, sampled.
    fn logged(&self, token: &str, error: AuthError) -> AuthError {
        if let AuthError::InvalidToken(reason) = &error
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
        error
    }

    /// How full the verified-token cache is; `None` when it is disabled.
    pub fn cache_usage(&self) -> Option<CacheUsage> {
        self.cache.as_ref().map(TokenCache::usage)
    }

    /// The whole check, with the keys at hand. `fetched` is the fetch a first check asked
    /// for, once it is done: a key it found the signature failing under is not tried again.
    fn check(&self, token: &str, fetched: Option<&KeyFetch>) -> Result<AccessToken, Stop> {
        if token.len() > self.max_token_bytes {
            return Err(refused(Rejection::TooLarge));
        }
        let cached = self
            .cache
            .as_ref()
            .map(|cache| (cache, TokenKey::of(token)));
        if let Some((cache, token_key)) = &cached
            && let Some(known) = cache.get(token_key)
        {
            let (keys, generation) = self
                .keys
                .current_with_generation()
                .ok_or(Stop::Refused(AuthError::KeysUnavailable))?;
            // A verdict holds only while the key that earned it is still the provider's.
            if keys.still_uses(&known.key, known.by_kid) {
                cache.remember(token_key, &known.token, generation, keys.trusted_until());
                return Ok(known.token);
            }
            cache.invalidate(token_key);
        }

        // Checked past the cache: a token found there was a well-formed one when it was
        // verified (its key is the whole token).
        if !is_token68(token) {
            return Err(refused(Rejection::Malformed));
        }
        let jws = Jws::parse(token).map_err(refused)?;
        self.check_header(&jws.header).map_err(refused)?;
        let keys = self
            .keys
            .current()
            .ok_or(Stop::Refused(AuthError::KeysUnavailable))?;
        let by_kid = jws.header.kid.is_some();
        let key = match &jws.header.kid {
            // Perhaps the provider rotated its keys: fetch them and look again.
            Some(kid) => keys.get(kid).ok_or(Stop::Fetch(KeyFetch {
                trigger: Trigger::UnknownKid,
                failed: None,
            }))?,
            None => keys
                .single()
                .ok_or_else(|| refused(Rejection::UnknownKey))?,
        };
        // After a fetch that kept the key the signature failed under, it fails again.
        let unchanged = fetched
            .and_then(|fetched| fetched.failed.as_ref())
            .is_some_and(|failed| Arc::ptr_eq(failed, key));
        let verdict = if unchanged {
            Err(Rejection::Signature)
        } else {
            self.verify(&jws, key)
        };
        match verdict {
            // Perhaps the provider replaced the key under the same kid: fetch the keys and
            // check once more if the key did change.
            Err(Rejection::Signature) => {
                return Err(Stop::Fetch(KeyFetch {
                    trigger: Trigger::Signature,
                    failed: Some(Arc::clone(key)),
                }));
            }
            verdict => verdict.map_err(refused)?,
        }
        let (claims, payload) = self.claims(&jws).map_err(refused)?;

        let token = AccessToken::new(claims, payload, &self.roles);
        if let Some((cache, token_key)) = cached {
            cache.offer(&token_key, || Verdict {
                token: token.clone(),
                signed: Box::from(token_key.signed),
                key: Arc::clone(key),
                by_kid,
            });
        }
        Ok(token)
    }

    /// RFC 7515 §4.1.11: a `crit` parameter lists extensions the verifier must understand,
    /// and this one understands none. RFC 8725 §3.11: an explicit type other than an access
    /// token's (`id+jwt`, `logout+jwt`, `dpop+jwt`, ...) is another kind of JWT.
    fn check_header(&self, header: &Header) -> Result<(), Rejection> {
        if header.crit.is_some() {
            return Err(Rejection::CriticalHeader);
        }
        // Refused before any key is looked up, so it cannot make the key set be fetched again.
        if !self.algorithms.contains(&header.alg) {
            return Err(Rejection::Algorithm);
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

    /// The signature, with the key's algorithm, which the header must name too (the
    /// settings allow it: keys of other algorithms are not loaded, and `check_header`
    /// refused the token's).
    fn verify(&self, jws: &Jws<'_>, key: &VerificationKey) -> Result<(), Rejection> {
        if key.algorithm != jws.header.alg {
            return Err(Rejection::Algorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(jws.signature)
            .map_err(|_| Rejection::Malformed)?;
        if key.verifies(jws.signing_input.as_bytes(), &signature) {
            Ok(())
        } else {
            Err(Rejection::Signature)
        }
    }

    /// The claims of a token whose signature holds, checked; and their JSON.
    fn claims(&self, jws: &Jws<'_>) -> Result<(Claims, Vec<u8>), Rejection> {
        let payload = URL_SAFE_NO_PAD
            .decode(jws.payload)
            .map_err(|_| Rejection::Malformed)?;
        let claims: Claims = json_object(&payload).ok_or(Rejection::Claims)?;
        let now = unix_now();
        self.check_registered(&claims, now)?;
        self.check_claims(&claims)?;
        Ok((claims, payload))
    }

    /// RFC 7519 §4.1, as this service requires it: `iss`, `sub` and `exp` present (and
    /// `aud`, when `OIDC_AUDIENCE` is set), `exp` not past and `nbf` and `iat` not yet to
    /// come beyond the leeway, `iss` exactly the provider's, and `aud` naming this API.
    fn check_registered(&self, claims: &Claims, now: i64) -> Result<(), Rejection> {
        if claims.iss.is_empty()
            || claims.sub.is_empty()
            || claims.exp == ABSENT
            || (self.audience.is_some() && claims.aud.is_none())
        {
            return Err(Rejection::MissingClaim);
        }
        // RFC 7519 §4.1.4: the time must be before `exp` (plus the leeway), not at it.
        if claims.exp <= now.saturating_sub(self.leeway) {
            return Err(Rejection::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(Rejection::NotYetValid);
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.leeway))
        {
            return Err(Rejection::IssuedInFuture);
        }
        if claims.iss != self.issuer {
            return Err(Rejection::Issuer);
        }
        if let Some(audience) = &self.audience
            && !claims
                .aud
                .iter()
                .flat_map(|aud| aud.iter())
                .any(|aud| aud == audience)
        {
            return Err(Rejection::Audience);
        }
        Ok(())
    }

    /// What RFC 9068 and this service add: the token is a bearer token (no `cnf`: this
    /// service verifies no proof of possession, RFC 9449 §7, RFC 8705 §3), an access token
    /// (no security event's `events`; Keycloak's payload `typ`; no ID-token hashes, and no
    /// `nonce` without `typ: Bearer`, unless `at+jwt` already proved the type), and names a
    /// client that may call.
    fn check_claims(&self, claims: &Claims) -> Result<(), Rejection> {
        if claims.cnf.is_some() {
            return Err(Rejection::SenderConstrained);
        }
        // RFC 8725 §3.12: a Security Event Token (a logout token) has `events`, which an
        // access token never has; it may be typed `JWT` like one, so this is its mark.
        if claims.events.is_some() {
            return Err(Rejection::NotAccessToken);
        }
        if claims
            .typ
            .as_deref()
            .is_some_and(|typ| !typ.eq_ignore_ascii_case("Bearer"))
        {
            return Err(Rejection::NotAccessToken);
        }
        // Past the check above, a payload `typ` can only be Keycloak's `Bearer`.
        let id_token_marks = claims.at_hash.is_some()
            || claims.c_hash.is_some()
            || (claims.nonce.is_some() && claims.typ.is_none());
        if !self.require_at_jwt && id_token_marks {
            return Err(Rejection::NotAccessToken);
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

/// `json` parsed as `T` if it is a JSON object (RFC 7519 §7.2): a derived `Deserialize`
/// would also take an array, filling the fields in order. (jsonwebtoken's `Header` takes
/// only objects: it flattens its extra members.)
fn json_object<T: serde::de::DeserializeOwned>(json: &[u8]) -> Option<T> {
    if json.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// RFC 6750 §2.1 `b64token`: letters, digits and `-._~+/`, then optional `=` padding.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
    // A token is most of a kilobyte: checked 64 bytes at a time without stopping early
    // inside a chunk, which the compiler turns into vector instructions (5 times faster).
    !body.is_empty()
        && body
            .as_bytes()
            .chunks(64)
            .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & allowed(b)))
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
        let now = u64::try_from(unix_now()).unwrap_or_default();
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
