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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moka::sync::Cache;

use super::claims::AccessToken;
use super::keys::VerificationKey;

/// What an entry costs besides its claims: the key, the fingerprint, the token's scope and
/// role sets, and the cache's own bookkeeping, in bytes.
pub const ENTRY_OVERHEAD: u32 = 512;

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
        (bytes > 0).then(|| Self {
            verdicts: Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, verdict: &Verdict| weight(&verdict.token))
                .expire_after(UntilExpiry)
                .build(),
            // One slot per KiB of budget: a token is admitted if no other token took its
            // slot between its first two sightings.
            seen: Doorkeeper::new(usize::try_from(bytes / 1024).unwrap_or(usize::MAX)),
        })
    }

    pub fn fingerprint(token: &str) -> Fingerprint {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        digest
            .as_ref()
            .try_into()
            .expect("SHA-256 digests are 32 bytes")
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

/// Entries live until their token expires, and no longer.
struct UntilExpiry;

impl moka::Expiry<Fingerprint, Verdict> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &Fingerprint,
        verdict: &Verdict,
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
