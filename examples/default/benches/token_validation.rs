//! Cost of validating a bearer token, on the two paths a request can take: the signature
//! path (a token the service has not seen) and the verified-token cache (the same token
//! again). Prints figures: `cargo bench --bench token_validation`.

#[path = "../tests/helpers/mod.rs"]
mod helpers;

use std::hint::black_box;
use std::time::{Duration, Instant};

use helpers::issuer::{AUDIENCE, SigningKey, token_for, validator};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde_json::json;

const ISSUER: &str = "https://issuer.bench.example";
const FRESH_TOKENS: u32 = 2_000;
const REPEATS: u32 = 200_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("token validation, one thread, {build} build");
    for algorithm in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key = SigningKey::generate("bench-key", algorithm);
        let jwks: JwkSet = serde_json::from_value(json!({ "keys": [key.jwk()] })).unwrap();
        let validator = validator(ISSUER, AUDIENCE, &jwks);
        let fresh: Vec<String> = (0..FRESH_TOKENS)
            .map(|_| token_for(ISSUER, &key).sign())
            .collect();
        let repeated = token_for(ISSUER, &key).sign();

        let (signature, cached) = runtime.block_on(async {
            // Signature path: every token is new to the service.
            let start = Instant::now();
            for token in &fresh {
                black_box(validator.validate(token).await.expect("a valid token"));
            }
            let signature = start.elapsed() / FRESH_TOKENS;
            // Cache path: the same token again and again.
            let start = Instant::now();
            for _ in 0..REPEATS {
                black_box(validator.validate(&repeated).await.expect("a valid token"));
            }
            (signature, start.elapsed() / REPEATS)
        });
        report(&format!("{algorithm:?} signature path"), signature);
        report(&format!("{algorithm:?} cache path"), cached);
    }
}

fn report(name: &str, per_token: Duration) {
    let micros = per_token.as_secs_f64() * 1e6;
    let per_second = 1.0 / per_token.as_secs_f64();
    println!("  {name:<24} {micros:>9.2} µs/token {per_second:>12.0} tokens/s");
}
