//! The verified-token cache: a token presented again during its lifetime skips the
//! signature check.
//!
//! - **Admission on the second sighting.** A token is cached only when it is verified a
//!   second time, so a stream of single-use tokens (each client a token per call, or an
//!   attacker minting garbage that happens to verify) costs no cache insertion, while a token
//!   a client keeps sending is cached from its second request on. Tokens seen once are
//!   remembered by fingerprint in a fixed table ([`Doorkeeper`]): it forgets, never grows.
//! - **Bounded in bytes** (`OIDC_TOKEN_CACHE_BYTES`), not in entries: an entry weighs its
//!   claims twice over (parsed, and as the JSON kept for [`AccessToken::claim`]) plus
//!   [`ENTRY_OVERHEAD`], so large tokens take more of the budget.
//! - **A verdict ends with its token** (`exp`) and **with its key**: the validator checks
//!   that the key that verified the signature is still the provider's before it trusts a
//!   cached verdict.
//! - **Each thread keeps copies of the last [`FRONT_SLOTS`] verdicts it used** ([`Front`]),
//!   checked against the key set of one generation: a hit there takes no lock and changes
//!   nothing another thread reads, where a hit in the shared cache makes the workers take
//!   turns at the same locks and reference counts. A new key set (a refresh, a rotation, keys
//!   dropped as stale) empties every thread's copies, which then come from the shared cache
//!   again. They are outside the byte budget: at most [`FRONT_SLOTS`] tokens' claims per
//!   thread.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;

use super::claims::AccessToken;
use super::keys::VerificationKey;

/// What an entry costs besides its claims: the key, the fingerprint, the token's scope and
/// role sets, and the cache's own bookkeeping, in bytes.
pub const ENTRY_OVERHEAD: u32 = 512;

/// How many verdicts each thread keeps in front of the shared cache.
pub const FRONT_SLOTS: usize = 8;

/// A token's SHA-256: the cache never holds the token itself.
pub type Fingerprint = [u8; 32];

/// A verified token's claims and the key that verified its signature.
#[derive(Clone)]
pub struct Verdict {
    pub token: AccessToken,
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
                .weigher(|_, verdict: &Verdict| weight(&verdict.token))
                .expire_after(UntilExpiry)
                .build(),
            // One slot per KiB of budget: a token is admitted if no other token took its
            // slot between its first two sightings.
            seen: Doorkeeper::new(usize::try_from(bytes / 1024).unwrap_or(usize::MAX)),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    pub fn fingerprint(token: &str) -> Fingerprint {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        digest
            .as_ref()
            .try_into()
            .expect("SHA-256 digests are 32 bytes")
    }

    /// This thread's copy of a verdict it used since the key set became `generation`,
    /// unless its token, or the key set's trust, has expired since.
    pub fn recent(&self, fingerprint: &Fingerprint, generation: u64) -> Option<AccessToken> {
        FRONT.with_borrow(|front| front.get(self.id, generation, fingerprint))
    }

    /// Keeps this thread's own copy of `token`, whose key was checked against the key set
    /// of `generation`, trusted until `trusted_until`.
    pub fn remember(
        &self,
        fingerprint: Fingerprint,
        token: &AccessToken,
        generation: u64,
        trusted_until: Option<Instant>,
    ) {
        let copy = token.detached();
        FRONT.with_borrow_mut(|front| {
            front.put(self.id, generation, trusted_until, fingerprint, copy);
        });
    }

    pub fn get(&self, fingerprint: &Fingerprint) -> Option<Verdict> {
        self.verdicts.get(fingerprint)
    }

    pub fn invalidate(&self, fingerprint: &Fingerprint) {
        self.verdicts.invalidate(fingerprint);
    }

    /// Caches `verdict` if this is the second time its token was verified; otherwise only
    /// notes that it was seen.
    pub fn offer(&self, fingerprint: Fingerprint, verdict: impl FnOnce() -> Verdict) {
        if self.seen.second_sighting(&fingerprint) {
            self.verdicts.insert(fingerprint, verdict());
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

/// An entry's weight in bytes: its claims twice (parsed, and as JSON) and the overhead.
fn weight(token: &AccessToken) -> u32 {
    let claims = u32::try_from(token.payload_len()).unwrap_or(u32::MAX / 4);
    claims.saturating_mul(2).saturating_add(ENTRY_OVERHEAD)
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

/// A thread's copies of the verdicts it used last, all checked against one key set.
struct Front {
    /// The [`TokenCache`] they come from (tests run several validators on one thread).
    owner: u64,
    /// The key set's generation they were checked under.
    generation: u64,
    trusted_until: Option<Instant>,
    slots: [Option<(Fingerprint, AccessToken)>; FRONT_SLOTS],
    /// The slot the next copy takes: the oldest.
    next: usize,
}

impl Front {
    const EMPTY: Self = Self {
        owner: 0,
        generation: 0,
        trusted_until: None,
        slots: [const { None }; FRONT_SLOTS],
        next: 0,
    };

    fn get(&self, owner: u64, generation: u64, fingerprint: &Fingerprint) -> Option<AccessToken> {
        if self.owner != owner
            || self.generation != generation
            || self
                .trusted_until
                .is_some_and(|until| Instant::now() >= until)
        {
            return None;
        }
        let (_, token) = self
            .slots
            .iter()
            .flatten()
            .find(|(f, _)| f == fingerprint)?;
        (token.exp > unix_now()).then(|| token.clone())
    }

    fn put(
        &mut self,
        owner: u64,
        generation: u64,
        trusted_until: Option<Instant>,
        fingerprint: Fingerprint,
        token: AccessToken,
    ) {
        if self.owner != owner || self.generation != generation {
            *self = Self {
                owner,
                generation,
                trusted_until,
                ..Self::EMPTY
            };
        }
        let slot = match self
            .slots
            .iter()
            .position(|slot| slot.as_ref().is_some_and(|(f, _)| *f == fingerprint))
        {
            Some(taken) => taken,
            None => {
                let next = self.next;
                self.next = (next + 1) % FRONT_SLOTS;
                next
            }
        };
        self.slots[slot] = Some((fingerprint, token));
    }
}

/// Seconds since the epoch, as `exp`, `nbf` and `iat` count them.
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
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
        let [valid, expired, distrusted] =
            ["valid", "expired", "distrusted"].map(TokenCache::fingerprint);
        let later = unix_now() + 60;

        cache.remember(valid, &token(later), 7, None);
        assert_eq!(
            cache.recent(&valid, 7).map(|t| t.sub.clone()).as_deref(),
            Some("ada")
        );
        assert!(
            other.recent(&valid, 7).is_none(),
            "another validator's copy"
        );
        assert!(cache.recent(&valid, 8).is_none(), "the key set changed");

        cache.remember(expired, &token(unix_now() - 1), 7, None);
        assert!(cache.recent(&expired, 7).is_none(), "the token expired");

        cache.remember(distrusted, &token(later), 9, Some(Instant::now()));
        assert!(
            cache.recent(&distrusted, 9).is_none(),
            "the key set went stale"
        );
        assert!(
            cache.recent(&valid, 7).is_none(),
            "a new generation dropped the older copies"
        );

        for i in 0..=FRONT_SLOTS {
            cache.remember(
                TokenCache::fingerprint(&i.to_string()),
                &token(later),
                10,
                None,
            );
        }
        assert!(
            cache.recent(&TokenCache::fingerprint("0"), 10).is_none(),
            "the oldest went"
        );
        let newest = TokenCache::fingerprint(&FRONT_SLOTS.to_string());
        assert!(cache.recent(&newest, 10).is_some());
    }

    #[test]
    fn a_fingerprint_is_admitted_on_its_second_sighting() {
        let seen = Doorkeeper::new(0);
        let (a, b) = (TokenCache::fingerprint("a"), TokenCache::fingerprint("b"));
        assert!(!seen.second_sighting(&a), "first sighting");
        assert!(!seen.second_sighting(&b));
        assert!(seen.second_sighting(&a), "second sighting");
        assert!(!seen.second_sighting(&a), "forgotten once admitted");
    }

    #[test]
    fn the_doorkeeper_forgets_instead_of_growing() {
        let seen = Doorkeeper::new(0);
        assert_eq!(seen.slots.len(), 1024);
        let first = TokenCache::fingerprint("first");
        seen.second_sighting(&first);
        // A flood of other tokens takes every slot, the first one's included.
        for i in 0..100_000 {
            seen.second_sighting(&TokenCache::fingerprint(&i.to_string()));
        }
        assert_eq!(seen.slots.len(), 1024);
        assert!(!seen.second_sighting(&first), "seen again as if new");
    }
}
