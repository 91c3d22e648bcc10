//! Bearer-token authentication, end to end: a test provider serves discovery and keys on
//! loopback, the service discovers it, and every request goes through the real validation.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::issuer::{
    AUDIENCE, SigningKey, TestIssuer, dev_issuer_token, now, test_ca_bundle, token_for,
};
use crate::helpers::{TestApp, probe, spawn_app_with_routes};
use crate::service::auth::keys::{self, KeyStore};
use crate::service::auth::validator::{LOG_LINES_PER_SECOND, TokenValidator};
use crate::service::settings::Settings;

/// The service with the probe routes under `/api/v1` and `vars`.
async fn spawn<V: AsRef<str>>(vars: &[(&str, V)]) -> TestApp {
    spawn_app_with_routes(vars, probe::routes).await
}

/// The service, configured for `issuer`, with its keys loaded.
async fn app_for(issuer: &TestIssuer, extra: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(&str, String)> = issuer.settings();
    vars.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    let app = spawn(&vars).await;
    app.wait_until_ready().await;
    app
}

/// Status, `WWW-Authenticate` and body of a call to the protected route.
async fn call(app: &TestApp, token: &str) -> (u16, String, Value) {
    let response = app.get_with_token("/api/v1/protected", token).await;
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Asserts a 401 `invalid_token` whose description mentions `reason`.
async fn assert_refused(app: &TestApp, token: &str, reason: &str) {
    let (status, challenge, body) = call(app, token).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        challenge.starts_with(r#"Bearer error="invalid_token""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(reason),
        "{challenge:?} should mention {reason:?}"
    );
    assert_eq!(body["status"], 401);
    assert!(body["detail"].as_str().unwrap().contains(reason), "{body}");
}

#[tokio::test]
async fn a_valid_token_reaches_the_protected_route() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    let (status, _, body) = call(&app, &issuer.token().sign()).await;

    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "message": "Authorized access", "sub": "alice" })
    );
}

#[tokio::test]
async fn me_returns_the_callers_identity() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let token = issuer
        .token()
        .claim(
            "resource_access",
            json!({ "test-api": { "roles": ["clerk", "user"] }, "other": { "roles": ["x"] } }),
        )
        .claim("realm_access", json!({ "roles": ["realm-admin"] }))
        .sign();

    let response = app.get_with_token("/api/v1/me", &token).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({
            "sub": "alice",
            "username": "alice",
            "email": "alice@example.test",
            "roles": ["clerk", "user"],
            "scopes": ["read", "write"]
        })
    );
}

#[tokio::test]
async fn a_request_without_credentials_gets_a_bare_bearer_challenge() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    let response = app.get("/api/v1/protected").await;

    assert_eq!(response.status(), 401);
    // RFC 6750 §3.1: no error code when the request carried no credentials.
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn another_scheme_than_bearer_gets_the_answer_to_no_credentials() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    // On an optional-token route too: credentials that were sent are not anonymous.
    for route in ["/api/v1/protected", "/api/v1/hello"] {
        let response = app
            .client
            .get(format!("{}{route}", app.address))
            .basic_auth("alice", Some("secret"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 401, "{route}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{route}");
    }
}

#[tokio::test]
async fn a_request_with_two_authorization_headers_is_a_bad_request() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let admin = format!("Bearer {}", issuer.token().roles(&["admin"]).sign());

    // RFC 6750 §3.1 `invalid_request`, whichever the second header is, on a route that
    // needs a token, one where it is optional and one guarded by middleware: a proxy that
    // read the other header must not have authorised someone else.
    for second in [admin.as_str(), "Basic YWxpY2U6c2VjcmV0"] {
        for route in ["/api/v1/protected", "/api/v1/hello", "/api/v1/admin"] {
            let response = app
                .client
                .get(format!("{}{route}", app.address))
                .header("authorization", &admin)
                .header("authorization", second)
                .send()
                .await
                .unwrap();

            assert_eq!(response.status(), 400, "{route}");
            assert_eq!(
                response.headers()["www-authenticate"],
                r#"Bearer error="invalid_request", error_description="the request has more than one Authorization header""#,
                "{route}"
            );
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["status"], 400, "{route}");
        }
    }
    // One of them is enough.
    assert_eq!(
        app.get_with_token("/api/v1/admin", &admin["Bearer ".len()..])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let good = issuer.token().sign();
    let truncated = &good[..good.len() - 10];
    let header_only = good.split('.').next().unwrap();

    for garbage in ["garbage", "a.b.c", header_only, truncated] {
        let (status, challenge, _) = call(&app, garbage).await;
        assert_eq!(status, 401, "{garbage}");
        assert!(
            challenge.contains("invalid_token"),
            "{garbage}: {challenge}"
        );
    }
}

#[tokio::test]
async fn a_tampered_token_fails_its_signature() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let token = issuer.token().sign();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged = issuer.token().claim("sub", json!("mallory")).sign();
    parts[1] = forged.split('.').nth(1).unwrap().to_owned();

    assert_refused(&app, &parts.join("."), "signature").await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    assert_refused(&app, &issuer.token().unsigned(), "not a well-formed JWT").await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    assert_refused(&app, &issuer.token().hmac_with_public_key(), "algorithm").await;
}

#[tokio::test]
async fn a_header_algorithm_the_key_does_not_allow_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    // Signed by the EC key while claiming the RSA key's kid.
    let token = issuer
        .token()
        .signed_by(&issuer.key("ec-1"))
        .kid("rsa-1")
        .sign();

    assert_refused(&app, &token, "algorithm").await;
}

#[tokio::test]
async fn an_algorithm_the_settings_leave_out_is_refused_before_keys_are_fetched() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[("OIDC_ALGORITHMS", "RS256")]).await;
    // A key under a kid the service has not seen: were the algorithm checked only against
    // the key, the unknown kid would make the service fetch the key set again.
    let es384 = SigningKey::generate("es384-1", Algorithm::ES384);
    issuer.add_key(es384.clone());
    let fetches = issuer.jwks_fetches();

    let token = issuer.token().signed_by(&es384).sign();
    assert_refused(&app, &token, "algorithm").await;
    assert_eq!(
        issuer.jwks_fetches(),
        fetches,
        "no fetch for a refused algorithm"
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    // Past the 5 s leeway.
    let token = issuer.token().claim("exp", json!(now() - 30)).sign();

    assert_refused(&app, &token, "expired").await;
}

#[tokio::test]
async fn a_token_is_refused_from_the_second_it_expires() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[("OIDC_LEEWAY", "0")]).await;
    // RFC 7519 §4.1.4: the time must be before `exp`; at `exp` the token has expired.
    let token = issuer.token().claim("exp", json!(now())).sign();

    assert_refused(&app, &token, "expired").await;
}

#[tokio::test]
async fn a_token_that_is_not_valid_yet_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let token = issuer.token().claim("nbf", json!(now() + 600)).sign();

    assert_refused(&app, &token, "not valid yet").await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let token = issuer
        .token()
        .claim("iss", json!("https://evil.example"))
        .sign();

    assert_refused(&app, &token, "issuer").await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let token = issuer
        .token()
        .claim("aud", json!(["other-api", "account"]))
        .sign();

    assert_refused(&app, &token, "audience").await;
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    assert_refused(
        &app,
        &issuer.token().without("exp").sign(),
        "required claim",
    )
    .await;
}

#[tokio::test]
async fn an_oversize_token_is_refused_before_parsing() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let token = issuer
        .token()
        .claim("padding", json!("x".repeat(9000)))
        .sign();

    assert_refused(&app, &token, "larger than the accepted size").await;
}

#[tokio::test]
async fn the_at_jwt_type_is_required_when_configured() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[("OIDC_REQUIRE_AT_JWT", "true")]).await;

    assert_eq!(call(&app, &issuer.token().sign()).await.0, 200);
    assert_refused(&app, &issuer.token().typ("JWT").sign(), "at+jwt").await;
}

#[tokio::test]
async fn a_missing_role_is_a_403_insufficient_scope() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    let user = app
        .get_with_token("/api/v1/admin", &issuer.token().sign())
        .await;
    assert_eq!(user.status(), 403);
    assert_eq!(
        user.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope""#
    );
    assert_eq!(user.headers()["content-type"], "application/problem+json");

    let admin_token = issuer.token().roles(&["user", "admin"]).sign();
    let admin = app.get_with_token("/api/v1/admin", &admin_token).await;
    assert_eq!(admin.status(), 200);
}

#[tokio::test]
async fn a_realm_administrator_is_not_an_administrator_of_this_api() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    // Admin of the realm (or of another application), and in a plain roles claim.
    let realm_admin = issuer
        .token()
        .claim("realm_access", json!({ "roles": ["admin"] }))
        .claim("roles", json!(["admin"]))
        .claim(
            "resource_access",
            json!({ "billing": { "roles": ["admin"] } }),
        )
        .sign();

    let refused = app.get_with_token("/api/v1/admin", &realm_admin).await;
    assert_eq!(refused.status(), 403);

    // Realm-wide roles count only when the setting says so.
    let loose = app_for(&issuer, &[("OIDC_REALM_ROLES", "true")]).await;
    let allowed = loose.get_with_token("/api/v1/admin", &realm_admin).await;
    assert_eq!(allowed.status(), 200);
}

#[tokio::test]
async fn an_id_token_is_never_accepted_as_an_access_token() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    // What Keycloak issues to a client whose id is the API's audience: same issuer, key
    // and audience as an access token.
    let keycloak_id_token = issuer
        .token()
        .claim("typ", json!("ID"))
        .claim("at_hash", json!("wfgvmE9VxjAudsl9lc6TqA"))
        .claim("nonce", json!("n-0S6_WzA2Mj"))
        .sign();
    let with_at_hash = issuer
        .token()
        .without("typ")
        .claim("at_hash", json!("wfgvmE9VxjAudsl9lc6TqA"))
        .sign();
    let with_c_hash = issuer
        .token()
        .without("typ")
        .claim("c_hash", json!("LDktKdoQak3Pk0cnXxCltA"))
        .sign();
    // What most other providers issue after a login: no payload type, no hashes from the
    // code flow, the login's nonce.
    let with_nonce = issuer
        .token()
        .without("typ")
        .claim("nonce", json!("n-0S6_WzA2Mj"))
        .sign();
    let refresh_token = issuer.token().claim("typ", json!("Refresh")).sign();

    for token in [
        keycloak_id_token,
        with_at_hash,
        with_c_hash,
        with_nonce,
        refresh_token,
    ] {
        assert_refused(&app, &token, "not an access token").await;
    }
}

#[tokio::test]
async fn access_tokens_with_a_nonce_from_older_keycloak_releases_still_work() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    // keycloak/keycloak#26893: the login's nonce was copied into access tokens.
    let token = issuer.token().claim("nonce", json!("n-0S6_WzA2Mj")).sign();
    let untyped = issuer.token().without("typ").sign();

    assert_eq!(call(&app, &token).await.0, 200);
    assert_eq!(call(&app, &untyped).await.0, 200);
}

#[tokio::test]
async fn a_token_bound_to_its_holder_is_not_accepted_as_a_bearer_token() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let thumbprint = json!("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    // RFC 9449: bound to a DPoP key, as most providers write it (at+jwt, no payload typ).
    let dpop = issuer
        .token()
        .without("typ")
        .claim("cnf", json!({ "jkt": thumbprint }))
        .sign();
    // Keycloak's DPoP-bound token, which also says so in its payload type.
    let keycloak_dpop = issuer
        .token()
        .claim("typ", json!("DPoP"))
        .claim("cnf", json!({ "jkt": thumbprint }))
        .sign();
    // RFC 8705: bound to a client certificate.
    let certificate = issuer
        .token()
        .claim("cnf", json!({ "x5t#S256": thumbprint }))
        .sign();

    for token in [dpop, keycloak_dpop, certificate] {
        assert_refused(&app, &token, "bound to its holder's key").await;
    }
    // The same token unbound is a bearer token.
    let unbound = issuer.token().without("typ").sign();
    assert_eq!(call(&app, &unbound).await.0, 200);
}

#[tokio::test]
async fn other_kinds_of_jwt_are_refused_by_their_explicit_type() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    for typ in [
        "id+jwt",
        "logout+jwt",
        "application/secevent+jwt",
        "dpop+jwt",
    ] {
        let token = issuer.token().typ(typ).sign();
        assert_refused(&app, &token, "not an access token").await;
    }
    assert_eq!(call(&app, &issuer.token().typ("JWT").sign()).await.0, 200);
}

#[tokio::test]
async fn a_logout_token_is_refused_by_its_events() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    // OIDC Back-Channel Logout §2.4: a Security Event Token (RFC 8417), which a provider may
    // type `JWT` like its access tokens, for the same audience.
    let events = json!({ "http://schemas.openid.net/event/backchannel-logout": {} });
    let logout = issuer
        .token()
        .typ("JWT")
        .without("typ")
        .claim("sid", json!("08a5019c-17e1-4977-8f42-65a12843ea02"))
        .claim("events", events)
        .sign();

    assert_refused(&app, &logout, "not an access token").await;
}

#[tokio::test]
async fn an_at_jwt_header_proves_the_type_when_it_is_required() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[("OIDC_REQUIRE_AT_JWT", "true")]).await;
    // Some providers put at_hash in access tokens too; at+jwt already says what the token
    // is, whatever marks of an ID token its payload carries.
    let token = issuer
        .token()
        .claim("at_hash", json!("wfgvmE9VxjAudsl9lc6TqA"))
        .sign();
    let with_nonce = issuer
        .token()
        .without("typ")
        .claim("nonce", json!("n-0S6_WzA2Mj"))
        .sign();

    assert_eq!(call(&app, &token).await.0, 200);
    assert_eq!(call(&app, &with_nonce).await.0, 200);
    // A Keycloak ID token is still refused by its payload type, and a bound token by `cnf`.
    let id_token = issuer.token().claim("typ", json!("ID")).sign();
    assert_refused(&app, &id_token, "not an access token").await;
    let bound = issuer.token().claim("cnf", json!({ "jkt": "0ZcO" })).sign();
    assert_refused(&app, &bound, "bound to its holder's key").await;
}

#[tokio::test]
async fn a_critical_header_parameter_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    // RFC 7515 §4.1.11: the verifier understands no extension, so any `crit` is fatal.
    let token = issuer.token().crit(&["exp"]).sign();
    assert_refused(&app, &token, "critical header parameter").await;
    let b64 = issuer.token().crit(&["b64"]);
    let header = b64.header_json().replacen('{', r#"{"b64":false,"#, 1);
    let payload = b64.claims_json();
    assert_refused(
        &app,
        &b64.sign_raw(&header, &payload),
        "critical header parameter",
    )
    .await;
}

#[tokio::test]
async fn duplicate_members_in_the_header_or_the_claims_are_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let builder = || issuer.token();

    // RFC 7515 §5.2, RFC 7519 §4: a duplicate of a member the service reads is refused,
    // never resolved either way (others, read on demand, are the last one's, as §4 allows).
    let good = builder();
    let (header, claims) = (good.header_json(), good.claims_json());
    assert_eq!(call(&app, &good.sign_raw(&header, &claims)).await.0, 200);
    let duplicate_alg = header.replacen('{', r#"{"alg":"none","#, 1);
    let duplicate_sub = claims.replacen('{', r#"{"sub":"mallory","#, 1);
    let duplicate_exp = claims.replacen('{', &format!(r#"{{"exp":{},"#, now() + 86_400 * 365), 1);

    let (status, _, _) = call(&app, &builder().sign_raw(&duplicate_alg, &claims)).await;
    assert_eq!(status, 401, "duplicate alg");
    for payload in [duplicate_sub, duplicate_exp] {
        let (status, _, body) = call(&app, &builder().sign_raw(&header, &payload)).await;
        assert_eq!(status, 401, "{payload}: {body}");
    }
}

#[tokio::test]
async fn a_claims_set_that_is_not_a_json_object_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let builder = issuer.token();
    let header = builder.header_json();
    let claims: Value = serde_json::from_str(&builder.claims_json()).unwrap();

    // RFC 7519 §7.2: an object. A derived `Deserialize` takes an array too, field by field.
    let array = json!([claims["iss"], claims["sub"], claims["aud"], claims["exp"]]);
    let token = issuer.token().sign_raw(&header, &array.to_string());
    assert_refused(&app, &token, "claims are invalid").await;
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    let future = issuer.token().claim("iat", json!(now() + 600)).sign();
    assert_refused(&app, &future, "issued in the future").await;
    // Within the 5 s leeway: a provider whose clock runs a little ahead.
    let skewed = issuer.token().claim("iat", json!(now() + 2)).sign();
    assert_eq!(call(&app, &skewed).await.0, 200);
}

#[tokio::test]
async fn only_allowed_clients_may_call_when_they_are_listed() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[("OIDC_ALLOWED_CLIENTS", "test-app, cli")]).await;

    assert_eq!(call(&app, &issuer.token().sign()).await.0, 200);
    let cli = issuer.token().claim("azp", json!("cli")).sign();
    assert_eq!(call(&app, &cli).await.0, 200);
    let stranger = issuer.token().claim("azp", json!("other-app")).sign();
    assert_refused(&app, &stranger, "client that may not call").await;
    // RFC 9068's client_id claim is held to the same list.
    let rfc9068 = issuer
        .token()
        .without("azp")
        .claim("client_id", json!("other-app"))
        .sign();
    assert_refused(&app, &rfc9068, "client that may not call").await;
    // With a list, a token must name its client.
    let anonymous = issuer.token().without("azp").sign();
    assert_refused(&app, &anonymous, "client that may not call").await;
}

#[tokio::test]
async fn keys_published_for_encryption_never_verify_a_token() {
    let issuer = TestIssuer::start().await;
    // The attacker's scenario: a token signed with the private half of a key the provider
    // publishes for encrypting to it.
    let cases = [
        ("enc-use", json!({ "use": "enc" })),
        ("enc-ops", json!({ "key_ops": ["encrypt", "wrapKey"] })),
        ("enc-alg", json!({ "alg": "ECDH-ES" })),
        ("enc-alg-kw", json!({ "alg": "ECDH-ES+A128KW" })),
    ];
    let signing = SigningKey::generate("sig", Algorithm::ES256);
    issuer.add_key(signing.clone());
    let mut keys = Vec::new();
    for (kid, members) in &cases {
        let key = SigningKey::generate(kid, Algorithm::ES256);
        let mut jwk = key.jwk().clone();
        jwk.as_object_mut().unwrap().remove("use");
        jwk.as_object_mut().unwrap().remove("alg");
        jwk.as_object_mut()
            .unwrap()
            .extend(members.as_object().unwrap().clone());
        issuer.publish_jwk(key.clone(), jwk);
        keys.push(key);
    }
    let app = app_for(&issuer, &[]).await;

    for key in &keys {
        let token = issuer.token().signed_by(key).sign();
        assert_refused(&app, &token, "signing key is unknown").await;
    }
    // A key published for signatures works.
    let token = issuer.token().signed_by(&signing).sign();
    assert_eq!(call(&app, &token).await.0, 200);
}

#[tokio::test]
async fn every_asymmetric_algorithm_works_when_the_key_says_so() {
    let issuer = TestIssuer::start().await;
    let algorithms = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    let keys: Vec<SigningKey> = algorithms
        .iter()
        .map(|algorithm| SigningKey::generate(&format!("{algorithm:?}-key"), *algorithm))
        .collect();
    for key in &keys {
        issuer.add_key(key.clone());
    }
    let app = app_for(&issuer, &[]).await;

    for key in &keys {
        let (status, _, body) = call(&app, &issuer.token().signed_by(key).sign()).await;
        assert_eq!(status, 200, "{:?}: {body}", key.algorithm);
    }
}

#[tokio::test]
async fn a_rotated_key_is_accepted_on_first_use_and_a_retired_one_refused() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let old = issuer.token().sign();
    // Verified, cached the second time, and the worker's own copy the third.
    for _ in 0..3 {
        assert_eq!(call(&app, &old).await.0, 200);
    }

    let rotated = SigningKey::generate("rsa-2", Algorithm::RS256);
    issuer.add_key(rotated.clone());
    issuer.retire_key("rsa-1");

    // The unknown kid makes the service fetch the keys again, once.
    let fetches = issuer.jwks_fetches();
    assert_eq!(
        call(&app, &issuer.token().signed_by(&rotated).sign())
            .await
            .0,
        200
    );
    assert_eq!(issuer.jwks_fetches(), fetches + 1);
    // The retired key left the set, so even a token it signed before (and the cache
    // remembered) is refused now.
    assert_refused(&app, &old, "signing key is unknown").await;
}

#[tokio::test]
async fn a_key_replaced_under_the_same_kid_is_found_on_first_use() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let old_key = issuer.key("ec-1");
    let old = issuer.token().signed_by(&old_key).sign();
    for _ in 0..3 {
        assert_eq!(
            call(&app, &old).await.0,
            200,
            "verified, cached, then the worker's own copy"
        );
    }

    // The provider restarts with a fresh key under the same kid.
    let new_key = SigningKey::generate("ec-1", Algorithm::ES256);
    issuer.replace_key(new_key.clone());
    let fetches = issuer.jwks_fetches();

    // The first token of the new key fails under the old one, which makes the service look
    // again, once; the next scheduled refresh is minutes away.
    assert_eq!(
        call(&app, &issuer.token().signed_by(&new_key).sign())
            .await
            .0,
        200
    );
    assert_eq!(issuer.jwks_fetches(), fetches + 1);
    // The cached verdict of the old key does not outlive it.
    assert_refused(&app, &old, "signature").await;
}

#[tokio::test]
async fn a_key_replaced_during_load_leaves_no_stale_verdict_behind() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let old_key = issuer.key("ec-1");
    let old_tokens: Vec<String> = (0..8)
        .map(|i| {
            let sub = json!(format!("old-{i}"));
            issuer.token().claim("sub", sub).signed_by(&old_key).sign()
        })
        .collect();
    let new_key = SigningKey::generate("ec-1", Algorithm::ES256);
    let new_token = issuer.token().signed_by(&new_key).sign();
    let start = std::time::Instant::now();

    // Old tokens (cached, or being verified) keep arriving while the key is replaced under
    // them and a token of the new key makes the service fetch the keys again.
    let load = async {
        let mut calls = Vec::new();
        while start.elapsed() < Duration::from_millis(1500) {
            let began = start.elapsed();
            let answers =
                futures_util::future::join_all(old_tokens.iter().map(|t| call(&app, t))).await;
            calls.extend(answers.into_iter().map(|(status, _, _)| (began, status)));
        }
        calls
    };
    let rotation = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        issuer.replace_key(new_key.clone());
        let (status, _, _) = call(&app, &new_token).await;
        (start.elapsed(), status)
    };
    let (calls, (refreshed_at, new_status)) = tokio::join!(load, rotation);

    assert_eq!(new_status, 200, "the new key is found on first use");
    let before: Vec<u16> = calls
        .iter()
        .filter(|(at, _)| *at < Duration::from_millis(300))
        .map(|(_, s)| *s)
        .collect();
    let after: Vec<u16> = calls
        .iter()
        .filter(|(at, _)| *at > refreshed_at)
        .map(|(_, s)| *s)
        .collect();
    assert!(
        !before.is_empty() && before.iter().all(|status| *status == 200),
        "{before:?}"
    );
    // Every old token sent once the service has the new key is refused, cached or not.
    assert!(
        !after.is_empty() && after.iter().all(|status| *status == 401),
        "{after:?}"
    );
}

#[tokio::test]
async fn unknown_kids_cause_at_most_one_fetch_per_cooldown() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    let stranger = SigningKey::generate("stranger", Algorithm::ES256);
    let before = issuer.jwks_fetches();

    let attempts = (0..40).map(|i| {
        let token = issuer
            .token()
            .signed_by(&stranger)
            .kid(&format!("unknown-{i}"))
            .sign();
        let app = &app;
        async move { call(app, &token).await.0 }
    });
    let statuses = futures_util::future::join_all(attempts).await;

    assert!(statuses.iter().all(|status| *status == 401), "{statuses:?}");
    assert_eq!(
        issuer.jwks_fetches(),
        before + 1,
        "one fetch for 40 unknown kids"
    );
}

#[tokio::test]
async fn a_token_asks_for_one_key_fetch_at_most() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;
    // Signed under a kid the service knows, by another key: its signature fails.
    let impostor = SigningKey::generate("ec-1", Algorithm::ES256);
    let forged = issuer.token().signed_by(&impostor).sign();
    // Meanwhile the provider has retired that kid.
    issuer.retire_key("ec-1");
    let fetches = issuer.jwks_fetches();

    // The failed signature makes the service fetch the keys again, which no longer hold
    // the kid: the token is refused for that, with no second fetch for the unknown kid.
    assert_refused(&app, &forged, "signing key is unknown").await;
    assert_eq!(issuer.jwks_fetches(), fetches + 1);
    // The same token again: an unknown kid now, and the cooldown is running.
    assert_refused(&app, &forged, "signing key is unknown").await;
    assert_eq!(issuer.jwks_fetches(), fetches + 1);
}

#[tokio::test]
async fn valid_tokens_keep_working_while_the_provider_is_down() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    issuer.stop().await;

    // A token the service has never seen: verified with the cached keys.
    assert_eq!(call(&app, &issuer.token().sign()).await.0, 200);
    let stranger = SigningKey::generate("stranger", Algorithm::ES256);
    let unknown = issuer.token().signed_by(&stranger).sign();
    assert_refused(&app, &unknown, "signing key is unknown").await;
    // The failed refresh kept the keys.
    assert_eq!(call(&app, &issuer.token().sign()).await.0, 200);
    assert_eq!(app.get("/health/readiness").await.status(), 200);
}

#[tokio::test]
async fn keys_are_trusted_for_a_bounded_time_after_the_provider_goes_away() {
    let issuer = TestIssuer::start().await;
    let app = app_for(
        &issuer,
        &[
            ("OIDC_JWKS_MAX_AGE", "1"),
            ("OIDC_JWKS_COOLDOWN", "1"),
            ("OIDC_JWKS_MAX_STALE", "4"),
        ],
    )
    .await;
    let seen = issuer.token().sign();
    for _ in 0..3 {
        assert_eq!(
            call(&app, &seen).await.0,
            200,
            "verified, cached, then the worker's own copy"
        );
    }

    issuer.stop().await;
    // Still trusted right after the outage begins.
    assert_eq!(call(&app, &issuer.token().sign()).await.0, 200);
    // Past OIDC_JWKS_MAX_STALE since the last successful fetch the keys are dropped.
    tokio::time::sleep(Duration::from_millis(5500)).await;

    for token in [seen, issuer.token().sign()] {
        let response = app.get_with_token("/api/v1/protected", &token).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "5");
    }
    let readiness = app.get("/health/readiness").await;
    assert_eq!(readiness.status(), 503);
    let body: Value = readiness.json().await.unwrap();
    assert_eq!(body["checks"]["oidc"], json!({ "status": "down" }));
}

#[tokio::test]
async fn an_oversize_key_set_is_refused_whether_announced_or_streamed() {
    for streamed in [false, true] {
        oversize_key_set_is_refused(streamed).await;
    }
}

async fn oversize_key_set_is_refused(streamed: bool) {
    let issuer = TestIssuer::start().await;
    issuer.pad_jwks(keys::MAX_DOCUMENT_BYTES, streamed);
    let app = spawn(&issuer.settings()).await;

    // The service fetched the key set (and tries again), but never installs it.
    for _ in 0..600 {
        if issuer.jwks_fetches() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(issuer.jwks_fetches() > 0);
    assert_eq!(app.get("/health/readiness").await.status(), 503);
    let response = app
        .get_with_token("/api/v1/protected", &issuer.token().sign())
        .await;
    assert_eq!(response.status(), 503);

    issuer.pad_jwks(0, false);
    app.wait_until_ready().await;
    assert_eq!(call(&app, &issuer.token().sign()).await.0, 200);
}

/// Production settings for the test issuer behind TLS.
fn production(issuer_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("APP_ENVIRONMENT", "production".to_owned()),
        ("OIDC_ISSUER_URL", issuer_url.to_owned()),
        ("OIDC_AUDIENCE", crate::helpers::issuer::AUDIENCE.to_owned()),
        ("OIDC_CA_BUNDLE", test_ca_bundle()),
        // The test database has no TLS; ignored without a database.
        ("DATABASE_ALLOW_INSECURE", "true".to_owned()),
    ]
}

#[tokio::test]
async fn production_fetches_keys_over_https() {
    let issuer = TestIssuer::start().await;
    let https_issuer = issuer.serve_tls(None).await;
    let app = spawn(&production(&https_issuer)).await;
    app.wait_until_ready().await;

    let token = issuer.token().claim("iss", json!(https_issuer)).sign();
    assert_eq!(call(&app, &token).await.0, 200);
}

#[tokio::test]
async fn production_refuses_keys_served_over_plain_http() {
    let issuer = TestIssuer::start().await;
    // Discovery over TLS names a key set on plain http.
    let plain_jwks = format!("{}/jwks", issuer.issuer);
    let https_issuer = issuer.serve_tls(Some(plain_jwks)).await;
    let token = issuer.token().claim("iss", json!(https_issuer)).sign();

    let app = spawn(&production(&https_issuer)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.get("/health/readiness").await.status(), 503);
    assert_eq!(
        app.get_with_token("/api/v1/protected", &token)
            .await
            .status(),
        503
    );
    assert_eq!(issuer.jwks_fetches(), 0, "the key set was never fetched");

    // The one explicit loosening, for a network that encrypts below the service.
    let mut vars = production(&https_issuer);
    vars.push(("OIDC_ALLOW_HTTP", "true".to_owned()));
    let allowed = spawn(&vars).await;
    allowed.wait_until_ready().await;
    assert_eq!(call(&allowed, &token).await.0, 200);
}

#[tokio::test]
async fn discovery_may_be_reached_by_another_name_than_the_issuer() {
    let issuer = TestIssuer::start().await;
    // The same provider, reached as `localhost` while its tokens name 127.0.0.1.
    let internal = issuer.configuration_url().replace("127.0.0.1", "localhost");
    let app = spawn(&[
        ("OIDC_CONFIGURATION_URL", internal.as_str()),
        ("OIDC_ISSUER_URL", issuer.issuer.as_str()),
        ("OIDC_AUDIENCE", crate::helpers::issuer::AUDIENCE),
    ])
    .await;
    app.wait_until_ready().await;

    let (status, _, _) = call(&app, &issuer.token().sign()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn startup_does_not_wait_for_the_provider_and_readiness_reports_it() {
    // A provider that mints one token, then goes away before the service starts.
    let first = TestIssuer::start().await;
    let port = first.port();
    let issuer_url = first.issuer.clone();
    let early_token = first.token().sign();
    first.stop().await;
    drop(first);

    let app = spawn(&[
        ("OIDC_ISSUER_URL", issuer_url.as_str()),
        ("OIDC_AUDIENCE", crate::helpers::issuer::AUDIENCE),
    ])
    .await;

    let readiness = app.get("/health/readiness").await;
    assert_eq!(readiness.status(), 503);
    let body: Value = readiness.json().await.unwrap();
    // Down, and nothing more: the provider's address is for the log, not for callers.
    assert_eq!(
        body["checks"]["oidc"],
        json!({ "status": "down" }),
        "{body}"
    );
    // Without keys no token can be checked: 503, not a 401 blaming the client.
    let early = app.get_with_token("/api/v1/protected", &early_token).await;
    assert_eq!(early.status(), 503);

    // The provider comes up; the background task finds it on its next attempt.
    let issuer = TestIssuer::start_on(port).await;
    for _ in 0..300 {
        if app.get("/health/readiness").await.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call(&app, &issuer.token().sign()).await.0, 200);
}

#[tokio::test]
async fn an_optional_token_route_greets_anonymous_callers_but_refuses_bad_tokens() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    let anonymous = app.get("/api/v1/hello").await;
    assert_eq!(anonymous.status(), 200);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap()["message"],
        "Hello, anonymous"
    );

    let named = app
        .get_with_token("/api/v1/hello", &issuer.token().sign())
        .await;
    assert_eq!(
        named.json::<Value>().await.unwrap()["message"],
        "Hello, alice"
    );

    let refused = app.get_with_token("/api/v1/hello", "not-a-token").await;
    assert_eq!(
        refused.status(),
        401,
        "a bad token is not treated as anonymous"
    );
}

#[tokio::test]
async fn the_development_issuer_mints_tokens_the_service_accepts() {
    // Locally, with no provider configured, the service is its own issuer.
    let app = spawn::<&str>(&[]).await;
    app.wait_until_ready().await;

    let request = json!({ "sub": "dev-alice", "roles": ["admin"], "scope": "read" });
    let token = &dev_issuer_token(&app.client, &app.address, request).await;

    let me: Value = app
        .get_with_token("/api/v1/me", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], "dev-alice");
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(me["scopes"], json!(["read"]));
    assert_eq!(
        app.get_with_token("/api/v1/admin", token).await.status(),
        200
    );
    let discovery: Value = app
        .get("/dev-issuer/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], format!("{}/dev-issuer", app.address));
}

#[tokio::test]
async fn the_development_issuer_refuses_requests_it_cannot_honour() {
    let app = spawn::<&str>(&[]).await;

    let too_long = app
        .client
        .post(format!("{}/dev-issuer/token", app.address))
        .json(&json!({ "sub": "x", "expires_in": 999_999 }))
        .send()
        .await
        .unwrap();
    assert_eq!(too_long.status(), 422);
    let unknown_field = app
        .client
        .post(format!("{}/dev-issuer/token", app.address))
        .json(&json!({ "subject": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 422);
}

#[tokio::test]
async fn the_development_issuer_signs_nothing_for_a_request_through_a_proxy() {
    let app = spawn::<&str>(&[]).await;

    // A proxy on the same machine connects from loopback too, on behalf of anyone.
    for (header, value) in [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7"),
        ("x-real-ip", "203.0.113.7"),
    ] {
        let response = app
            .client
            .post(format!("{}/dev-issuer/token", app.address))
            .header(header, value)
            .json(&json!({ "sub": "alice", "roles": ["admin"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("proxy"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn with_a_real_provider_configured_there_is_no_development_issuer() {
    let issuer = TestIssuer::start().await;
    let app = app_for(&issuer, &[]).await;

    let response = app
        .client
        .post(format!("{}/dev-issuer/token", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
}

#[cfg(unix)]
#[test]
fn production_refuses_to_start_the_development_issuer() {
    let dir = tempfile::tempdir().unwrap();

    let (status, stdout, stderr) = crate::helpers::run_to_exit(
        dir.path(),
        &[
            ("APP_ENVIRONMENT", "production"),
            ("OIDC_DEV_ISSUER", "true"),
            ("OIDC_AUDIENCE", "api"),
        ],
    );

    assert_eq!(status.code(), Some(1));
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with("error: invalid setting OIDC_DEV_ISSUER=\"true\""),
        "{stderr}"
    );
    assert!(stderr.contains("signs any token"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn a_refused_token_is_logged_with_reason_kid_and_issuer_but_never_the_token() {
    let mut service = crate::helpers::Service::start(&[("LOG_JSON_OUTPUT", "true")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (token, status) = runtime.block_on(async {
        let client = crate::helpers::http_client();
        let token = dev_issuer_token(&client, &service.address, json!({ "sub": "alice" })).await;
        // Same header and claims, another signature.
        let (signed, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{}", "A".repeat(86));
        let response = client
            .get(format!("{}/dev-issuer/userinfo", service.address))
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap();
        (token, response.status())
    });
    assert_eq!(status, 401);

    let line = service
        .wait_for_line(|line| line.contains("bearer token rejected"))
        .expect("the refusal is logged");
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["reason"], "signature");
    assert!(
        record["kid"].as_str().unwrap().starts_with("dev-"),
        "{line}"
    );
    assert!(
        record["iss"].as_str().unwrap().ends_with("/dev-issuer"),
        "{line}"
    );
    let (_, lines) = service.terminate();
    let (_, signature) = token.rsplit_once('.').unwrap();
    let (_, payload) = token.split_once('.').unwrap();
    for line in &lines {
        assert!(
            !line.contains(signature) && !line.contains(payload),
            "a token leaked: {line}"
        );
    }
}

#[cfg(unix)]
#[test]
fn the_development_issuer_never_listens_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();

    // On by default locally: the address is refused, and the message says why.
    let (status, stdout, stderr) = crate::helpers::run_to_exit(dir.path(), &[("HOST", "0.0.0.0")]);
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: invalid setting HOST=\"0.0.0.0\" with OIDC_DEV_ISSUER"),
        "{stderr}"
    );

    // Asked for explicitly: the request is refused.
    let (status, _, stderr) = crate::helpers::run_to_exit(
        dir.path(),
        &[("HOST", "0.0.0.0"), ("OIDC_DEV_ISSUER", "true")],
    );
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.starts_with("error: invalid setting OIDC_DEV_ISSUER=\"true\" with HOST=\"0.0.0.0\""),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn why_the_provider_is_unreachable_is_logged_not_shown() {
    // Nothing listens on this port: discovery fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/realms/hidden",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let mut service = crate::helpers::Service::start(&[
        ("LOG_JSON_OUTPUT", "true"),
        ("OIDC_ISSUER_URL", &url),
        ("OIDC_AUDIENCE", "api"),
    ]);
    // Until the first attempt fails, readiness would say only that no keys are loaded yet.
    service
        .wait_for_line(|line| line.contains("cannot load the provider's keys"))
        .expect("discovery fails");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body: Value = runtime.block_on(async {
        crate::helpers::http_client()
            .get(format!("{}/health/readiness", service.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(body["status"], "down");
    assert_eq!(body["checks"]["oidc"], json!({ "status": "down" }));
    assert!(!body.to_string().contains("hidden"), "{body}");
    let line = service
        .wait_for_line(|line| line.contains("readiness check down"))
        .expect("the reason is logged");
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["check"], "oidc");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach the provider"),
        "{line}"
    );
}

#[cfg(unix)]
#[test]
fn a_flood_of_refused_tokens_is_logged_sampled_and_counted_exactly() {
    let mut service = crate::helpers::Service::start(&[("LOG_JSON_OUTPUT", "true")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let send = |count: usize| {
        runtime.block_on(async {
            let client = crate::helpers::http_client();
            let calls = (0..count).map(|i| {
                client
                    .get(format!("{}/dev-issuer/userinfo", service.address))
                    .bearer_auth(format!("not.a.token{i}"))
                    .send()
            });
            for response in futures_util::future::join_all(calls).await {
                assert_eq!(response.unwrap().status(), 401);
            }
        });
    };
    let first = now();
    send(500);
    // The burst may span more than one second on a busy machine; each has its own quota.
    let seconds = now() - first + 1;
    // A second later the next refusal is logged, carrying the count of those left out.
    std::thread::sleep(Duration::from_millis(2100));
    send(1);
    service.wait_for_line(|line| {
        line.contains("\"suppressed\"") && !line.contains("\"suppressed\":0")
    });
    let (_, lines) = service.terminate();

    let refusals: Vec<Value> = lines
        .iter()
        .filter(|line| line.contains("bearer token rejected"))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let quota = i64::from(LOG_LINES_PER_SECOND);
    assert!(
        refusals.len() as i64 <= quota * seconds + 1,
        "{} lines for 501 refusals in {seconds} s",
        refusals.len()
    );
    let left_out: u64 = refusals
        .iter()
        .map(|record| record["suppressed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        refusals.len() as u64 + left_out,
        501,
        "every refusal is accounted for"
    );
}

const ISSUER: &str = "https://issuer.cache.example";

/// The service's token validator alone, trusting `key`, with `vars` on top of the test
/// settings: its keys are installed directly, without HTTP.
fn validator_for(key: &SigningKey, vars: &[(&str, &str)]) -> Arc<TokenValidator> {
    let mut all = vec![
        ("CONFIG_DIR", "/nonexistent"),
        ("OIDC_ISSUER_URL", ISSUER),
        ("OIDC_AUDIENCE", AUDIENCE),
    ];
    // Parsed, never opened: the validator needs no database.
    #[cfg(feature = "database")]
    all.push(("DATABASE_URL", crate::helpers::database::UNREACHABLE_URL));
    all.extend_from_slice(vars);
    let settings = Settings::from_vars(all).expect("valid settings");
    let keys = KeyStore::new(&settings.auth).expect("a key store");
    keys.install(&serde_json::from_value(json!({ "keys": [key.jwk()] })).unwrap());
    TokenValidator::new(&settings.auth, keys, ISSUER.to_owned())
}

#[tokio::test]
async fn a_cached_tokens_signature_moved_onto_other_claims_is_refused() {
    let key = SigningKey::generate("ec-1", Algorithm::ES256);
    let validator = validator_for(&key, &[]);
    let token = token_for(ISSUER, &key).sign();
    // Verified twice (and cached), then found in the shared cache and copied for this
    // thread, then found in the copy.
    for _ in 0..4 {
        validator.validate(&token).await.expect("valid");
    }
    let other = token_for(ISSUER, &key)
        .claim("sub", json!("mallory"))
        .sign();
    let (signed, _) = other.rsplit_once('.').unwrap();
    let (_, signature) = token.rsplit_once('.').unwrap();
    let moved = format!("{signed}.{signature}");

    let refused = validator.validate(&moved).await.expect_err("forged");
    assert_eq!(refused.reason(), "signature");
    let valid = validator.validate(&token).await.expect("still valid");
    assert_ne!(valid.sub, "mallory");
}

#[tokio::test]
async fn a_token_is_cached_from_its_second_use_within_a_memory_bound() {
    let key = SigningKey::generate("ec-1", Algorithm::ES256);
    let validator = validator_for(&key, &[("OIDC_TOKEN_CACHE_BYTES", "64KiB")]);
    let usage = || validator.cache_usage().expect("the cache is on");

    let token = token_for(ISSUER, &key).sign();
    validator.validate(&token).await.expect("valid");
    assert_eq!(usage().entries, 0, "a token used once is not cached");
    validator.validate(&token).await.expect("valid");
    assert_eq!(usage().entries, 1, "cached on its second use");

    // Many tokens, each used twice: the cache keeps what fits in 64 KiB, and no more.
    for i in 0..200 {
        let token = token_for(ISSUER, &key)
            .claim("sub", json!(format!("user-{i}")))
            .sign();
        for _ in 0..2 {
            validator.validate(&token).await.expect("valid");
        }
    }
    let full = usage();
    assert!(full.bytes <= 64 * 1024, "{full:?}");
    assert!(full.entries > 10 && full.entries < 200, "{full:?}");

    let disabled = validator_for(&key, &[("OIDC_TOKEN_CACHE_BYTES", "0")]);
    assert_eq!(disabled.cache_usage(), None);
    let token = token_for(ISSUER, &key).sign();
    for _ in 0..2 {
        disabled
            .validate(&token)
            .await
            .expect("valid without a cache");
    }
}
