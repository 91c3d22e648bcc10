//! The path a request's credentials take before any handler runs: the `Authorization`
//! header, the bearer token inside it, and every check of the token validator.
//!
//! The first byte of an input picks what the rest is:
//! - `0`: an `Authorization` header value, through the `AccessToken` extractor;
//! - `1`: the claims of a token signed with a key the validator trusts;
//! - `2`: the header of such a token (the claims are valid).
//!
//! Whatever the input, nothing panics, a refusal is a 4xx, and an accepted token has the
//! trusted issuer, the audience and an expiry in the future.

#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, ResponseError, test::TestRequest, web};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use service::auth::AccessToken;
use service::auth::keys::KeyStore;
use service::auth::validator::TokenValidator;
use service::settings::Settings;

const ISSUER: &str = "https://issuer.fuzz.example";
const AUDIENCE: &str = "fuzz-api";
const KID: &str = "fuzz-key";
/// The clock skew the validator allows (`OIDC_LEEWAY`'s default).
const LEEWAY: i64 = 5;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    validator: Arc<TokenValidator>,
    key: Ed25519KeyPair,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let key = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("an Ed25519 key");
    let jwk = serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
        "kid": KID,
        "alg": "EdDSA",
        "use": "sig",
    });
    let jwks = serde_json::from_value(serde_json::json!({ "keys": [jwk] })).expect("a JWK set");
    let settings = Settings::from_vars([
        ("CONFIG_DIR", "/nonexistent"),
        ("OIDC_ISSUER_URL", ISSUER),
        ("OIDC_AUDIENCE", AUDIENCE),
    ])
    .expect("valid settings");
    let keys = KeyStore::new(&settings.auth).expect("a key store");
    keys.install(&jwks);
    Fixture {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime"),
        validator: TokenValidator::new(&settings.auth, keys, ISSUER.to_owned()),
        key,
    }
});

fuzz_target!(|input: &[u8]| {
    let fixture = &*FIXTURE;
    let Some((mode, rest)) = input.split_first() else {
        return;
    };
    match mode % 3 {
        0 => through_the_extractor(fixture, rest),
        1 => {
            let header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{KID}"}}"#);
            validate(fixture, &sign(fixture, header.as_bytes(), rest));
        }
        _ => {
            let claims = serde_json::json!({
                "iss": ISSUER, "aud": AUDIENCE, "sub": "fuzz", "exp": now() + 300,
            });
            validate(fixture, &sign(fixture, rest, claims.to_string().as_bytes()));
        }
    }
});

/// An `Authorization` header, as a request would bring it.
fn through_the_extractor(fixture: &Fixture, value: &[u8]) {
    let Ok(value) = actix_web::http::header::HeaderValue::from_bytes(value) else {
        return; // not a header a client could send
    };
    let request = TestRequest::default()
        .insert_header((AUTHORIZATION, value))
        .app_data(web::Data::from(Arc::clone(&fixture.validator)))
        .to_http_request();
    let result = fixture.runtime.block_on(AccessToken::from_request(
        &request,
        &mut actix_web::dev::Payload::None,
    ));
    match result {
        Ok(token) => check_accepted(&token),
        Err(error) => assert!(
            error.status_code().is_client_error(),
            "a refused header answered {}",
            error.status_code()
        ),
    }
}

fn validate(fixture: &Fixture, token: &str) {
    match fixture.runtime.block_on(fixture.validator.validate(token)) {
        Ok(token) => check_accepted(&token),
        Err(error) => assert!(
            error.status_code().is_client_error(),
            "a refused token answered {}",
            error.status_code()
        ),
    }
}

fn check_accepted(token: &AccessToken) {
    assert_eq!(token.iss, ISSUER);
    assert!(
        token
            .aud
            .as_ref()
            .is_some_and(|aud| aud.iter().any(|a| a == AUDIENCE))
    );
    assert!(token.exp + LEEWAY >= now(), "an expired token was accepted");
}

/// `header.claims.signature`, signed with the trusted key whatever the parts hold.
fn sign(fixture: &Fixture, header: &[u8], claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = fixture.key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

fn now() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    i64::try_from(seconds).unwrap_or(i64::MAX)
}
