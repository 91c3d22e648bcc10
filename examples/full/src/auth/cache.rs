//! The verified-token cache: a token presented again during its lifetime skips the
//! signature check.
//!
//! - **Admission on the second sighting.** A token is cached only when it is verified a
//!   second time, so a stream of single-use tokens (each client a token per call, or an
//!   attacker minting garbage that happens to verify) costs no cache insertion, while a token
//!   a client keeps sending is cached from its second request on. Tokens seen once are
//!   remembered by fingerprint in a fixed table ([`Doorkeeper`]): it forgets, never grows.
//! - **Known by a [`TokenKey`], never by the token**: the SHA-256 of its signature (the
//!   bearer credential) and its signed part (header and claims, no credential on their own),
//!   which a hit compares in full. Only the signature is hashed: a third to a half of an RS256
//!   token, a fifth of an ES256 one. A thread's copies are matched against the bytes the
//!   request carries, signed part first: a token the thread has no copy of is hashed once,
//!   for the shared cache, not twice, and a copy found needs no UTF-8 check.
//! - **Bounded in bytes** (`OIDC_TOKEN_CACHE_BYTES`), not in entries: an entry weighs its
//!   claims twice over (parsed, and as the JSON kept for [`AccessToken::claim`]), its signed
//!   part and [`ENTRY_OVERHEAD`], so large tokens take more of the budget.
//! - **A verdict ends with its token** (`exp`) and **with its key**: the validator checks
//!   that the key that verified the signature is still the provider's before it trusts a
//!   cached verdict.
//! - **Each thread keeps copies of the last [`FRONT_SLOTS`] verdicts it used** ([`Front`]),
//!   checked against the key set of one generation: a hit there takes no lock and changes
//!   nothing another thread reads, where a hit in the shared cache makes the workers take
//!   turns at the same locks and reference counts. A key set that changes (a rotation, a key
//!   replaced or retired, keys dropped as stale) empties every thread's copies, which then
//!   come from the shared cache again; a refresh that finds the same keys does not. They are
//!   outside the byte budget: at most [`FRONT_SLOTS`] tokens' claims and signed parts per
//!   thread.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;

use super::claims::AccessToken;
use super::keys::VerificationKey;

/// What an entry costs besides its claims and its signed part: the key, the fingerprint,
/// the token's scope and role sets, and the cache's own bookkeeping, in bytes.
pub const ENTRY_OVERHEAD: u32 = 512;

/// How many verdicts each thread keeps in front of the shared cache.
pub const FRONT_SLOTS: usize = 8;

/// The SHA-256 of a token's signature: the cache never holds the signature itself.
pub type Fingerprint = [u8; 32];

/// What the cache knows a token by: two tokens with the same key are the same token (or
/// both lack a `.`, and neither can be verified, so neither is ever cached).
#[derive(Clone, Copy)]
pub struct TokenKey<'a> {
    /// The SHA-256 of what follows the token's last `.` (its signature).
    pub fingerprint: Fingerprint,
    /// What comes before it (the header and the claims, as signed).
    pub signed: &'a str,
}

impl<'a> TokenKey<'a> {
    pub fn of(token: &'a str) -> Self {
        let (signed, signature) = split(token);
        Self {
            fingerprint: fingerprint(signature.as_bytes()),
            signed,
        }
    }
}

/// The SHA-256 of a token's signature.
fn fingerprint(signature: &[u8]) -> Fingerprint {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signature)
        .as_ref()
        .try_into()
        .expect("SHA-256 digests are 32 bytes")
}

/// A token's signed part and its signature; the whole of it is the signature when it has
/// no `.`, which only a malformed token lacks.
fn split(token: &str) -> (&str, &str) {
    token.rsplit_once('.').unwrap_or(("", token))
}

/// A verified token's claims and the key that verified its signature.
#[derive(Clone)]
pub struct Verdict {
    pub token: AccessToken,
    /// The token's [`TokenKey::signed`].
    pub signed: Box<str>,
    pub key: Arc<VerificationKey>,
    /// Whether the token named its key (`kid`) or was verified by the set's only key.
    pub by_kid: bool,
}

/// Verdicts by token fingerprint, and the fingerprints seen once.
pub struct TokenCache {
    verdicts: Cache<Fingerprint, Verdict>,
    seen: Doorkeeper,
    /// Tells this cache's copies in a thread's [`Front`] from another cache's.
    id: u64,
}

/// How full the cache is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUsage {
    pub entries: u64,
    /// The entries' weight, in bytes.
    pub bytes: u64,
}

impl TokenCache {
    /// A cache of at most `bytes`; `None` for 0, which disables it.
    pub fn new(bytes: u64) -> Option<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        (bytes > 0).then(|| Self {
            verdicts: Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, verdict: &Verdict| weight(verdict))
                .expire_after(UntilExpiry)
                .build(),
            // One slot per KiB of budget: a token is admitted if no other token took its
            // slot between its first two sightings.
            seen: Doorkeeper::new(usize::try_from(bytes / 1024).unwrap_or(usize::MAX)),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// This thread's copy of the verdict on `token` (as the request carries it) it used
    /// since the key set became `generation`, unless the token, or the key set's trust, has
    /// expired since.
    pub fn recent(&self, token: &[u8], generation: u64) -> Option<AccessToken> {
        FRONT.with_borrow(|front| front.get(self.id, generation, token))
    }

    /// Keeps this thread's own copy of `token`, whose key was checked against the key set
    /// of `generation`, trusted until `trusted_until`.
    pub fn remember(
        &self,
        key: &TokenKey<'_>,
        token: &AccessToken,
        generation: u64,
        trusted_until: Option<Instant>,
    ) {
        let Some(until) = Kept::until(token.exp, trusted_until) else {
            return;
        };
        let copy = Kept {
            fingerprint: key.fingerprint,
            signed: Box::from(key.signed),
            token: token.detached(),
            until,
        };
        FRONT.with_borrow_mut(|front| front.put(self.id, generation, copy));
    }

    /// The verdict on the token of `key`, until the token expires. A verdict under the same
    /// fingerprint for another signed part (a signature moved onto other claims) is not this
    /// token's: not found. The entry's own lifetime is counted in whole seconds on the
    /// monotonic clock, which a suspended machine or a wall clock set forward leaves behind
    /// `exp`: the wall clock, which `exp` is defined by, has the last word.
    pub fn get(&self, key: &TokenKey<'_>) -> Option<Verdict> {
        self.verdicts
            .get(&key.fingerprint)
            .filter(|verdict| *verdict.signed == *key.signed && unix_now() < verdict.token.exp)
    }

    pub fn invalidate(&self, key: &TokenKey<'_>) {
        self.verdicts.invalidate(&key.fingerprint);
    }

    /// Caches `verdict` if this is the second time its token was verified; otherwise only
    /// notes that it was seen.
    pub fn offer(&self, key: &TokenKey<'_>, verdict: impl FnOnce() -> Verdict) {
        if self.seen.second_sighting(&key.fingerprint) {
            self.verdicts.insert(key.fingerprint, verdict());
        }
    }

    /// The entries and their weight, once the cache's pending work is done.
    pub fn usage(&self) -> CacheUsage {
        self.verdicts.run_pending_tasks();
        CacheUsage {
            entries: self.verdicts.entry_count(),
            bytes: self.verdicts.weighted_size(),
        }
    }
}

/// An entry's weight in bytes: its claims twice (parsed, and as JSON), its signed part and
/// the overhead.
fn weight(verdict: &Verdict) -> u32 {
    let claims = u32::try_from(verdict.token.payload_len()).unwrap_or(u32::MAX / 4);
    let signed = u32::try_from(verdict.signed.len()).unwrap_or(u32::MAX / 4);
    claims
        .saturating_mul(2)
        .saturating_add(signed)
        .saturating_add(ENTRY_OVERHEAD)
}

/// Fingerprints of tokens seen once, a slot each, chosen by the fingerprint: a newer token
/// in the same slot replaces an older one. A fixed table of atomics, shared by every worker
/// without a lock; it forgets rather than grows, so the worst it does under a flood of new
/// tokens is to admit a repeated one a request later.
struct Doorkeeper {
    slots: Box<[AtomicU64]>,
}

impl Doorkeeper {
    /// At least 1024 slots, rounded up to a power of two, at most 2^20 (8 MiB).
    fn new(slots: usize) -> Self {
        let slots = slots.clamp(1 << 10, 1 << 20).next_power_of_two();
        Self {
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether `fingerprint` was seen since its slot last changed (and then forgets it,
    /// since the token is cached); otherwise remembers it.
    fn second_sighting(&self, fingerprint: &Fingerprint) -> bool {
        let word =
            |at: usize| u64::from_le_bytes(fingerprint[at..at + 8].try_into().expect("8 bytes"));
        // Never 0, the empty slot's value.
        let tag = word(0) | 1;
        let index = usize::try_from(word(8)).unwrap_or(usize::MAX) & (self.slots.len() - 1);
        let slot = &self.slots[index];
        if slot.load(Ordering::Relaxed) == tag {
            slot.store(0, Ordering::Relaxed);
            true
        } else {
            slot.store(tag, Ordering::Relaxed);
            false
        }
    }
}

thread_local! {
    static FRONT: RefCell<Front> = const { RefCell::new(Front::EMPTY) };
}

/// A verdict as a thread keeps it.
struct Kept {
    fingerprint: Fingerprint,
    signed: Box<str>,
    token: AccessToken,
    /// When the copy stops holding, as time since the epoch: the token's `exp` or the end
    /// of the key set's trust, whichever comes first. So a hit reads one clock, the wall
    /// clock `exp` is defined by (a suspended or paused machine does not stretch it).
    until: Duration,
}

impl Kept {
    /// Whether this is a copy of the token of `key`.
    fn is(&self, key: &TokenKey<'_>) -> bool {
        self.fingerprint == key.fingerprint && *self.signed == *key.signed
    }

    /// `Some(until)` for a token that expires at `exp` (seconds since the epoch) checked
    /// against keys trusted until `trusted_until`; `None` once either has passed.
    fn until(exp: i64, trusted_until: Option<Instant>) -> Option<Duration> {
        let now = since_epoch();
        let expires = Duration::from_secs(u64::try_from(exp).ok()?);
        let until = match trusted_until {
            Some(trusted) => {
                let left = trusted.checked_duration_since(Instant::now())?;
                expires.min(now.saturating_add(left))
            }
            None => expires,
        };
        (now < until).then_some(until)
    }
}

/// A thread's copies of the verdicts it used last, all checked against one key set.
struct Front {
    /// The [`TokenCache`] they come from (tests run several validators on one thread).
    owner: u64,
    /// The key set's generation they were checked under.
    generation: u64,
    slots: [Option<Kept>; FRONT_SLOTS],
    /// The slot the next copy takes: the oldest.
    next: usize,
}

impl Front {
    const EMPTY: Self = Self {
        owner: 0,
        generation: 0,
        slots: [const { None }; FRONT_SLOTS],
        next: 0,
    };

    /// The copy for `token`, as the request carries it: the copy whose signed part and a
    /// `.` the token starts with, and whose fingerprint is the SHA-256 of the rest. So the
    /// rest is hashed only when there is such a copy (a token this thread has not kept, a
    /// new one each time in a stream of single-use tokens, costs no hash here), and a copy
    /// found needs no UTF-8 check and no search for the last `.`: it is of a verified
    /// token, and the same bytes are the same token.
    fn get(&self, owner: u64, generation: u64, token: &[u8]) -> Option<AccessToken> {
        if self.owner != owner || self.generation != generation {
            return None;
        }
        let kept = self.slots.iter().flatten().find(|kept| {
            token
                .strip_prefix(kept.signed.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"."))
                .is_some_and(|signature| fingerprint(signature) == kept.fingerprint)
        })?;
        (since_epoch() < kept.until).then(|| kept.token.clone())
    }

    fn put(&mut self, owner: u64, generation: u64, copy: Kept) {
        if self.owner != owner || self.generation != generation {
            *self = Self {
                owner,
                generation,
                ..Self::EMPTY
            };
        }
        let key = TokenKey {
            fingerprint: copy.fingerprint,
            signed: &copy.signed,
        };
        let slot = match self
            .slots
            .iter()
            .position(|slot| slot.as_ref().is_some_and(|kept| kept.is(&key)))
        {
            Some(taken) => taken,
            None => {
                let next = self.next;
                self.next = (next + 1) % FRONT_SLOTS;
                next
            }
        };
        self.slots[slot] = Some(copy);
    }
}

/// The wall clock, as time since the epoch.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the epoch, as `exp`, `nbf` and `iat` count them.
pub(super) fn unix_now() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Entries live until their token expires, and no longer.
struct UntilExpiry;

impl moka::Expiry<Fingerprint, Verdict> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &Fingerprint,
        verdict: &Verdict,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let left = verdict.token.exp.saturating_sub(unix_now());
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::claims::{Claims, RoleSources};
    use super::super::keys::tests::sample_key;
    use super::*;

    fn token(exp: i64) -> AccessToken {
        let claims: Claims =
            serde_json::from_value(serde_json::json!({"sub": "ada", "exp": exp})).expect("claims");
        AccessToken::new(claims, b"{}".to_vec(), &RoleSources::default())
    }

    #[test]
    fn a_threads_copy_holds_while_its_key_set_and_token_do() {
        let cache = TokenCache::new(1 << 20).expect("a cache");
        let other = TokenCache::new(1 << 20).expect("a cache");
        let [valid, expired, distrusted] = ["h.c.valid", "h.c.expired", "h.c.distrusted"];
        let later = unix_now() + 60;

        cache.remember(&TokenKey::of(valid), &token(later), 7, None);
        assert_eq!(
            cache
                .recent(valid.as_bytes(), 7)
                .map(|t| t.sub.clone())
                .as_deref(),
            Some("ada")
        );
        assert!(
            other.recent(valid.as_bytes(), 7).is_none(),
            "another validator's copy"
        );
        assert!(
            cache.recent(valid.as_bytes(), 8).is_none(),
            "the key set changed"
        );

        cache.remember(&TokenKey::of(expired), &token(unix_now() - 1), 7, None);
        assert!(
            cache.recent(expired.as_bytes(), 7).is_none(),
            "the token expired"
        );

        let stale_soon = Instant::now() + Duration::from_millis(500);
        cache.remember(
            &TokenKey::of(distrusted),
            &token(later),
            9,
            Some(stale_soon),
        );
        assert!(cache.recent(distrusted.as_bytes(), 9).is_some());
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            cache.recent(distrusted.as_bytes(), 9).is_none(),
            "the key set went stale"
        );
        assert!(
            cache.recent(valid.as_bytes(), 7).is_none(),
            "a new generation dropped the older copies"
        );

        let names: Vec<String> = (0..=FRONT_SLOTS).map(|i| format!("h.c.{i}")).collect();
        for name in &names {
            cache.remember(&TokenKey::of(name), &token(later), 10, None);
        }
        assert!(
            cache.recent(names[0].as_bytes(), 10).is_none(),
            "the oldest went"
        );
        assert!(cache.recent(names[FRONT_SLOTS].as_bytes(), 10).is_some());
    }

    #[test]
    fn a_token_is_known_by_its_whole_text_and_only_its_signature_is_hashed() {
        let kept = TokenKey::of("header.claims.signature");
        let moved = TokenKey::of("header.other.signature");
        assert_eq!(kept.fingerprint, moved.fingerprint, "the same signature");
        assert_eq!(
            (kept.signed, moved.signed),
            ("header.claims", "header.other")
        );
        assert_ne!(
            kept.fingerprint,
            TokenKey::of("header.claims.signaturE").fingerprint
        );
        let cache = TokenCache::new(1 << 20).expect("a cache");
        cache.remember(&kept, &token(unix_now() + 60), 1, None);
        assert!(cache.recent(b"header.claims.signature", 1).is_some());
        assert!(
            cache.recent(b"header.other.signature", 1).is_none(),
            "a signature on other claims"
        );
        assert!(
            cache.recent(b"header.claims.signaturE", 1).is_none(),
            "another signature on the same claims"
        );
        assert!(
            cache.recent(b"header.claims.signature.more", 1).is_none(),
            "more after the signature"
        );
        assert!(
            cache.recent(b"header.claims.signature\xff", 1).is_none(),
            "bytes that are not text after it"
        );
        assert!(
            cache.recent(b"header.claimssignature", 1).is_none(),
            "no `.` between the claims and the signature"
        );
        // No `.` at all: the whole text is hashed, and nothing is signed.
        let bare = TokenKey::of("garbage");
        assert_eq!(bare.signed, "");
        assert_eq!(bare.fingerprint, TokenKey::of("x.garbage").fingerprint);
        assert!(cache.recent(b"garbage", 1).is_none());
    }

    #[test]
    fn a_shared_verdict_ends_when_its_token_expires_by_the_wall_clock() {
        // A token that expires at the next whole second, cached 0.3 to 0.6 s before it: the
        // entry's own lifetime, a whole second on the monotonic clock, outlasts the token.
        let fraction = since_epoch().subsec_millis();
        if !(300..=600).contains(&fraction) {
            std::thread::sleep(Duration::from_millis(u64::from((1300 - fraction) % 1000)));
        }
        let exp = unix_now() + 1;
        let cache = TokenCache::new(1 << 20).expect("a cache");
        let key = TokenKey::of("h.c.expiring");
        let verdict = || Verdict {
            token: token(exp),
            signed: Box::from(key.signed),
            key: sample_key(),
            by_kid: true,
        };
        cache.offer(&key, verdict);
        cache.offer(&key, verdict);
        assert!(cache.get(&key).is_some(), "cached on its second sighting");

        let expired = Duration::from_secs(u64::try_from(exp).expect("after 1970"));
        std::thread::sleep(expired.saturating_sub(since_epoch()) + Duration::from_millis(20));
        assert!(cache.get(&key).is_none(), "its token has expired");
    }

    #[test]
    fn a_fingerprint_is_admitted_on_its_second_sighting() {
        let seen = Doorkeeper::new(0);
        let (a, b) = (TokenKey::of("a").fingerprint, TokenKey::of("b").fingerprint);
        assert!(!seen.second_sighting(&a), "first sighting");
        assert!(!seen.second_sighting(&b));
        assert!(seen.second_sighting(&a), "second sighting");
        assert!(!seen.second_sighting(&a), "forgotten once admitted");
    }

    #[test]
    fn the_doorkeeper_forgets_instead_of_growing() {
        let seen = Doorkeeper::new(0);
        assert_eq!(seen.slots.len(), 1024);
        let first = TokenKey::of("first").fingerprint;
        seen.second_sighting(&first);
        // A flood of other tokens takes every slot, the first one's included.
        for i in 0..100_000 {
            seen.second_sighting(&TokenKey::of(&i.to_string()).fingerprint);
        }
        assert_eq!(seen.slots.len(), 1024);
        assert!(!seen.second_sighting(&first), "seen again as if new");
    }
}
