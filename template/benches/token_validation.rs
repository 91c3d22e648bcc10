//! Cost of validating a bearer token on the two paths a request can take: the signature
//! path (a token the service has not seen: signature, claims, then into the verified-token
//! cache) and the cache path (the same token again), for RS256, ES256 and EdDSA.
//! `cargo bench --bench token_validation`; Criterion keeps the last run in `target/criterion`
//! and reports the change against it.

use {{crate_name}} as service;

// The test issuer's keys and tokens; the benchmark uses a part of it.
#[allow(dead_code)]
#[path = "../tests/api/helpers/issuer.rs"]
mod issuer;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use issuer::{AUDIENCE, SigningKey, token_for};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde_json::json;
use service::auth::keys::KeyStore;
use service::auth::validator::TokenValidator;
use service::settings::Settings;

const ISSUER: &str = "https://issuer.bench.example";
/// Tokens signed up front for the signature path; each validator sees each one once.
const FRESH_TOKENS: usize = 2_000;

/// The service's token validator, trusting `jwks` for `issuer` (no HTTP involved).
pub fn validator(
    issuer: &str,
    audience: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
) -> std::sync::Arc<TokenValidator> {
    let settings = Settings::from_vars([
        ("CONFIG_DIR", "/nonexistent"),
        ("OIDC_ISSUER_URL", issuer),
        ("OIDC_AUDIENCE", audience),
    ])
    .expect("valid settings");
    let keys = KeyStore::new(&settings.auth).expect("a key store");
    keys.install(jwks);
    TokenValidator::new(&settings.auth, keys, issuer.to_owned())
}

fn token_validation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("token_validation");
    for algorithm in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key = SigningKey::generate("bench-key", algorithm);
        let jwks: JwkSet = serde_json::from_value(json!({ "keys": [key.jwk()] })).unwrap();
        let fresh: Vec<String> = (0..FRESH_TOKENS)
            .map(|_| token_for(ISSUER, &key).sign())
            .collect();

        group.bench_function(format!("{algorithm:?}/signature"), |b| {
            // Every token is new to the validator that checks it: a new validator (with an
            // empty cache) for each pass over the tokens, set up outside the timing.
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                let mut left = usize::try_from(iterations).unwrap_or(usize::MAX);
                while left > 0 {
                    let validator = validator(ISSUER, AUDIENCE, &jwks);
                    let batch = &fresh[..left.min(FRESH_TOKENS)];
                    let start = Instant::now();
                    for token in batch {
                        black_box(runtime.block_on(validator.validate(token)).expect("valid"));
                    }
                    elapsed += start.elapsed();
                    left -= batch.len();
                }
                elapsed
            });
        });

        let validator = validator(ISSUER, AUDIENCE, &jwks);
        let repeated = token_for(ISSUER, &key).sign();
        group.bench_function(format!("{algorithm:?}/cache"), |b| {
            b.iter(|| {
                black_box(
                    runtime
                        .block_on(validator.validate(&repeated))
                        .expect("valid"),
                )
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = token_validation
}
criterion_main!(benches);
