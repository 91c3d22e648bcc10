//! The development issuer: an OpenID provider inside the service, for local work only.
//!
//! It signs tokens for whoever asks, so settings refuse it outside the local environment
//! and on any address but a loopback one, a release build turns it on only when asked, and
//! it signs nothing for a request that carries a proxy's forwarding header (a tunnel such as
//! `kubectl port-forward` adds none, and is not told apart from a local call).
//! Its ES256 key is generated at startup and never leaves the process: tokens it minted die
//! with it.
//!
//! ```sh
//! curl -s -X POST localhost:8000/dev-issuer/token -H 'content-type: application/json' \
//!   -d '{"sub":"alice","roles":["admin"],"scope":"read write"}'
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;

use super::AccessToken;
use crate::problem::Problem;

/// Where the development issuer's routes are mounted.
pub const PATH: &str = "/dev-issuer";

/// An ephemeral ES256 key and the issuer URL it signs for.
pub struct DevIssuer {
    issuer: String,
    audience: String,
    /// The client whose roles the tokens carry (`resource_access.<client>.roles`).
    client: String,
    kid: String,
    key: EncodingKey,
    jwks: JwkSet,
}

impl DevIssuer {
    /// Generates a fresh key for the issuer at `issuer`, minting tokens for `audience` with
    /// roles of `client`.
    pub fn generate(issuer: String, audience: String, client: String) -> Result<Self, String> {
        let key_pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "cannot generate the development issuer's key")?;
        let pkcs8 = key_pair
            .to_pkcs8v1()
            .map_err(|_| "cannot encode the development issuer's key")?;
        // The public key is the uncompressed point 0x04 || x || y.
        let point = key_pair.public_key().as_ref();
        let kid = format!("dev-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let jwks: JwkSet = serde_json::from_value(json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]}))
        .map_err(|e| format!("cannot describe the development key: {e}"))?;
        Ok(Self {
            issuer,
            audience,
            client,
            kid,
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwks,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs an RFC 9068 access token for `request`.
    pub fn mint(&self, request: &TokenRequest) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let claims = json!({
            "iss": self.issuer,
            "sub": request.sub,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + request.expires_in,
            "jti": uuid::Uuid::new_v4().to_string(),
            "client_id": "dev-issuer",
            "scope": request.scope,
            "preferred_username": request.sub,
            // Where Keycloak puts the roles of the API's own client.
            "resource_access": serde_json::Map::from_iter([(
                self.client.clone(),
                json!({ "roles": request.roles }),
            )]),
        });
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

/// What `POST /dev-issuer/token` accepts; every field is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default = "default_subject")]
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scope: String,
    /// Lifetime in seconds, at most a day.
    #[serde(default = "default_lifetime")]
    pub expires_in: u64,
}

fn default_subject() -> String {
    "developer".into()
}

fn default_lifetime() -> u64 {
    3600
}

/// Mounts discovery, the key set, the token endpoint and the userinfo endpoint under
/// [`PATH`].
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope(PATH)
            .route(
                "/.well-known/openid-configuration",
                web::get().to(discovery),
            )
            .route("/jwks", web::get().to(jwks))
            .route("/token", web::post().to(token))
            .route("/userinfo", web::get().to(userinfo)),
    );
}

async fn discovery(issuer: web::Data<DevIssuer>) -> HttpResponse {
    let base = issuer.issuer();
    HttpResponse::Ok().json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}/jwks"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "authorization_endpoint": format!("{base}/authorize"),
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

/// The claims of the bearer token, once the service's validator accepted it: what a token
/// carries, and a route that needs a token in every service with auth.
async fn userinfo(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(&*token)
}

async fn jwks(issuer: web::Data<DevIssuer>) -> HttpResponse {
    HttpResponse::Ok().json(issuer.jwks())
}

/// Headers a proxy adds. The service listens on loopback only, so a request that carries
/// one came through a proxy on this machine, from anyone that proxy serves.
const PROXY_HEADERS: [HeaderName; 3] = [
    header::FORWARDED,
    header::X_FORWARDED_FOR,
    HeaderName::from_static("x-real-ip"),
];

async fn token(
    issuer: web::Data<DevIssuer>,
    http: HttpRequest,
    request: web::Json<TokenRequest>,
) -> HttpResponse {
    if PROXY_HEADERS
        .iter()
        .any(|name| http.headers().contains_key(name))
    {
        return Problem::new(actix_web::http::StatusCode::FORBIDDEN)
            .with_detail("the development issuer signs tokens for calls made on this machine only, not through a proxy")
            .to_response();
    }
    let invalid = |detail: &str| {
        Problem::new(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY)
            .with_detail(detail)
            .to_response()
    };
    if request.sub.is_empty() || request.sub.len() > 255 {
        return invalid("sub must be 1 to 255 characters");
    }
    if !(1..=86_400).contains(&request.expires_in) {
        return invalid("expires_in must be from 1 to 86400 seconds");
    }
    match issuer.mint(&request) {
        Ok(access_token) => HttpResponse::Ok().json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": request.expires_in,
            "scope": request.scope,
        })),
        Err(error) => {
            tracing::error!(%error, "the development issuer cannot sign");
            Problem::new(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR).to_response()
        }
    }
}
