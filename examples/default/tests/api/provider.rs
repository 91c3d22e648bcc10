//! Against a real OpenID provider. Ignored by a plain `cargo test`; the template's
//! `cargo xtask test` starts the npm `oidc-provider` on loopback and runs them with
//! `cargo test --test provider -- --ignored --test-threads=1` and:
//!
//! - `OIDC_TEST_ISSUER`: the provider's issuer URL (required);
//! - `OIDC_TEST_CLIENT_ID`, `OIDC_TEST_CLIENT_SECRET`: a client allowed the client-credentials
//!   and password grants (default `test-client` / `test-secret`);
//! - `OIDC_TEST_AUDIENCE`: the audience of its tokens (default `https://api.example.test`);
//! - `OIDC_TEST_ROTATE`: a command that makes the provider sign with a new key.
//!
//! The negative cases use the test provider's resource indicators (another audience, a
//! future `nbf`, a `JWT` type), its test-only password grant for users `alice` and `bob`,
//! and its DPoP support (RFC 9449), on by default, for a token bound to the client's key.

use crate::helpers::issuer::{SigningKey, now};
use crate::helpers::{TestApp, http_client, probe, spawn_app_with_routes};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

fn var(name: &str, default: Option<&str>) -> String {
    std::env::var(name)
        .ok()
        .or(default.map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} must be set; see the top of tests/provider.rs"))
}

struct Provider {
    issuer: String,
    audience: String,
    token_endpoint: String,
    client: reqwest::Client,
}

impl Provider {
    async fn discover() -> Self {
        let issuer = var("OIDC_TEST_ISSUER", None);
        let client = http_client();
        let discovery: Value = client
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("the provider answers")
            .json()
            .await
            .expect("a discovery document");
        Self {
            token_endpoint: discovery["token_endpoint"].as_str().unwrap().to_owned(),
            audience: var("OIDC_TEST_AUDIENCE", Some("https://api.example.test")),
            issuer,
            client,
        }
    }

    /// The service, configured for this provider, with its keys loaded.
    async fn app(&self, extra: &[(&str, &str)]) -> TestApp {
        let mut vars = vec![
            ("OIDC_ISSUER_URL", self.issuer.as_str()),
            ("OIDC_AUDIENCE", self.audience.as_str()),
        ];
        vars.extend_from_slice(extra);
        let app = spawn_app_with_routes(&vars, probe::routes).await;
        app.wait_until_ready().await;
        app
    }

    /// An access token from the token endpoint for `form`.
    async fn token(&self, form: &[(&str, &str)]) -> String {
        let response = self.token_response(form).await;
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token in {response}"))
            .to_owned()
    }

    /// The token endpoint's whole answer for `form`.
    async fn token_response(&self, form: &[(&str, &str)]) -> Value {
        answer(self.token_request(form)).await
    }

    /// A request to the token endpoint for `form`, as the test client.
    fn token_request(&self, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.client
            .post(&self.token_endpoint)
            .basic_auth(
                var("OIDC_TEST_CLIENT_ID", Some("test-client")),
                Some(var("OIDC_TEST_CLIENT_SECRET", Some("test-secret"))),
            )
            .form(form)
    }

    async fn client_token(&self, resource: Option<&str>) -> String {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("scope", "read write"),
        ];
        form.extend(resource.map(|resource| ("resource", resource)));
        self.token(&form).await
    }

    async fn user_token(&self, user: &str, extra: &[(&str, &str)]) -> String {
        let password = format!("{user}-pw");
        let mut form = vec![
            ("grant_type", "password"),
            ("username", user),
            ("password", password.as_str()),
            ("scope", "read"),
        ];
        form.extend_from_slice(extra);
        self.token(&form).await
    }
}

/// The token endpoint's answer to `request`.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("the token endpoint answers")
        .json()
        .await
        .expect("a token response")
}

/// The service refuses `token` on the protected route, saying `reason`.
async fn assert_refused(app: &TestApp, token: &str, reason: &str) {
    let response = app.get_with_token("/api/v1/protected", token).await;
    assert_eq!(response.status(), 401, "{reason}");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(reason),
        "{challenge:?} should mention {reason}"
    );
}

/// A JWT's claims, unverified.
fn payload(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode_claims(token).expect("a JWT")
}

async fn status(app: &TestApp, path: &str, token: &str) -> u16 {
    app.get_with_token(path, token).await.status().as_u16()
}

#[tokio::test]
#[ignore = "needs a real OpenID provider: see the top of this file"]
async fn client_credentials_tokens_are_accepted() {
    let provider = Provider::discover().await;
    let app = provider.app(&[]).await;

    for resource in [None, Some("https://api.example.test/es256")] {
        let token = provider.client_token(resource).await;
        let response = app.get_with_token("/api/v1/protected", &token).await;
        assert_eq!(response.status(), 200, "{resource:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Authorized access");
    }
}

#[tokio::test]
#[ignore = "needs a real OpenID provider: see the top of this file"]
async fn user_tokens_carry_identity_and_roles() {
    let provider = Provider::discover().await;
    let app = provider.app(&[]).await;
    let bob = provider.user_token("bob", &[]).await;

    let me: Value = app
        .get_with_token("/api/v1/me", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], "bob");
    assert_eq!(me["email"], "bob@example.test");
    assert_eq!(me["roles"], serde_json::json!(["admin", "user"]));
    assert_eq!(status(&app, "/api/v1/admin", &bob).await, 200);

    let alice = provider.user_token("alice", &[]).await;
    assert_eq!(status(&app, "/api/v1/admin", &alice).await, 403);
}

#[tokio::test]
#[ignore = "needs a real OpenID provider: see the top of this file"]
async fn tokens_the_service_must_not_accept_are_refused() {
    let provider = Provider::discover().await;
    let app = provider.app(&[("OIDC_REQUIRE_AT_JWT", "true")]).await;

    let other_api = provider
        .client_token(Some("https://other.example.test"))
        .await;
    let expired = provider
        .user_token("alice", &[("expires_in", "-3600")])
        .await;
    let not_yet = provider
        .client_token(Some("https://api.example.test/nbf-future"))
        .await;
    let plain_jwt = provider
        .client_token(Some("https://api.example.test/typ-jwt"))
        .await;

    for (token, reason) in [
        (other_api, "audience"),
        (expired, "expired"),
        (not_yet, "not valid yet"),
        (plain_jwt, "at+jwt"),
    ] {
        assert_refused(&app, &token, reason).await;
    }
}

#[tokio::test]
#[ignore = "needs a real OpenID provider: see the top of this file"]
async fn an_id_token_is_refused_even_where_its_audience_matches() {
    let provider = Provider::discover().await;
    // As if the API were the client the user logged in with: the ID token's audience.
    let client_id = var("OIDC_TEST_CLIENT_ID", Some("test-client"));
    let app = provider.app(&[("OIDC_AUDIENCE", client_id.as_str())]).await;

    // With the access token's hash, and with the login's nonce instead (the test grant's
    // `nonce`): the two ways a provider's ID token says what it is.
    for nonce in [None, Some("n-0S6_WzA2Mj")] {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-pw"),
            ("scope", "openid read"),
        ];
        form.extend(nonce.map(|nonce| ("nonce", nonce)));
        let login = provider.token_response(&form).await;
        let id_token = login["id_token"].as_str().expect("an ID token with openid");
        // The one mark the service can go by: the hash, or else the nonce.
        let claims = payload(id_token);
        assert_eq!(claims.get("at_hash").is_some(), nonce.is_none(), "{claims}");
        assert_eq!(claims["nonce"].as_str(), nonce, "{claims}");

        assert_refused(&app, id_token, "not an access token").await;
    }
}

#[tokio::test]
#[ignore = "needs a real OpenID provider: see the top of this file"]
async fn a_token_bound_to_a_dpop_key_is_refused_as_a_bearer_token() {
    let provider = Provider::discover().await;
    let app = provider.app(&[]).await;
    // RFC 9449 §4: the client proves it holds a key, and the provider binds the token to it.
    let key = SigningKey::generate("dpop", Algorithm::ES256);
    let jwk = key.jwk();
    let header = json!({
        "typ": "dpop+jwt",
        "alg": "ES256",
        "jwk": { "kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"] },
    });
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "htm": "POST",
        "htu": provider.token_endpoint,
        "iat": now(),
    });
    let proof = key.sign_raw(&header.to_string(), &claims.to_string());
    let form = [("grant_type", "client_credentials"), ("scope", "read")];
    let bound = answer(provider.token_request(&form).header("DPoP", proof)).await;
    assert_eq!(bound["token_type"], "DPoP", "{bound}");
    let bound = bound["access_token"].as_str().expect("an access token");

    assert!(payload(bound)["cnf"]["jkt"].is_string(), "{bound}");
    assert_refused(&app, bound, "bound to its holder's key").await;
    // The same grant without a proof gives a bearer token, which is accepted.
    let bearer = provider.token(&form).await;
    assert_eq!(status(&app, "/api/v1/protected", &bearer).await, 200);
}

#[tokio::test]
#[ignore = "needs a real OpenID provider: see the top of this file"]
async fn a_rotated_key_is_accepted_on_first_use() {
    let provider = Provider::discover().await;
    let app = provider.app(&[]).await;
    let before = provider.client_token(None).await;
    assert_eq!(status(&app, "/api/v1/protected", &before).await, 200);

    let rotate = var("OIDC_TEST_ROTATE", None);
    let rotated = std::process::Command::new("sh")
        .args(["-c", &rotate])
        .status()
        .expect("the rotation command runs");
    assert!(rotated.success(), "{rotate} failed");

    // A new client: the old one's pooled connection died with the old provider process.
    let provider = Provider::discover().await;
    let after = provider.client_token(None).await;
    assert_ne!(
        kid(&before),
        kid(&after),
        "the provider signs with a new key"
    );
    assert_eq!(status(&app, "/api/v1/protected", &after).await, 200);
    // The old key is still published, so tokens it signed stay valid until they expire.
    assert_eq!(status(&app, "/api/v1/protected", &before).await, 200);
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT")
        .kid
        .expect("a kid")
}
