//! A test OpenID provider: discovery and JWKS on a random loopback port (plain, or behind
//! TLS with the test CA in `tls/`), and a minter of good and hostile tokens. Auth tests run
//! the service's real discovery → JWKS → validation path against it; nothing in the service
//! is replaced.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

/// The audience the test service is configured with.
pub const AUDIENCE: &str = "test-api";

/// A signing key and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    /// The public key's bytes, which a forger might try as an HMAC secret.
    public: Vec<u8>,
}

/// An RSA private key (PKCS#1 DER), its public JWK and its public key bytes.
type RsaMaterial = (Vec<u8>, Value, Vec<u8>);

/// RSA key generation is slow in debug builds, so each test binary makes a few and shares them.
static RSA_KEYS: LazyLock<Vec<RsaMaterial>> = LazyLock::new(|| {
    (0..3)
        .map(|_| {
            let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("an RSA key");
            let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).expect("PKCS#8");
            let public = key.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            });
            (pkcs1(pkcs8.as_ref()), jwk, public.as_ref().to_vec())
        })
        .collect()
});

static NEXT_RSA: AtomicUsize = AtomicUsize::new(0);

impl SigningKey {
    /// The public JWK, as a provider publishes it.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// A compact JWS of `header` and `payload`, as they are written.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.algorithm)
                .expect("the token signs");
        format!("{message}.{signature}")
    }

    /// A fresh key for `algorithm` (RSA keys come from a small shared pool).
    pub fn generate(kid: &str, algorithm: Algorithm) -> Self {
        let (encoding, mut jwk, public) = match algorithm {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let (der, jwk, public) =
                    RSA_KEYS[NEXT_RSA.fetch_add(1, Ordering::Relaxed) % RSA_KEYS.len()].clone();
                (EncodingKey::from_rsa_der(&der), jwk, public)
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let (curve, signing, size) = if algorithm == Algorithm::ES256 {
                    ("P-256", &ECDSA_P256_SHA256_FIXED_SIGNING, 32)
                } else {
                    ("P-384", &ECDSA_P384_SHA384_FIXED_SIGNING, 48)
                };
                let key = EcdsaKeyPair::generate(signing).expect("an EC key");
                let point = key.public_key().as_ref().to_vec();
                let jwk = json!({
                    "kty": "EC",
                    "crv": curve,
                    "x": URL_SAFE_NO_PAD.encode(&point[1..=size]),
                    "y": URL_SAFE_NO_PAD.encode(&point[size + 1..]),
                });
                let der = key.to_pkcs8v1().expect("PKCS#8");
                (EncodingKey::from_ec_der(der.as_ref()), jwk, point)
            }
            Algorithm::EdDSA => {
                let key = Ed25519KeyPair::generate().expect("an Ed25519 key");
                let public = key.public_key().as_ref().to_vec();
                let jwk =
                    json!({ "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&public) });
                let der = key.to_pkcs8().expect("PKCS#8");
                (EncodingKey::from_ed_der(der.as_ref()), jwk, public)
            }
            other => panic!("the test issuer does not sign with {other:?}"),
        };
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(format!("{algorithm:?}"));
        Self {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            jwk,
            public,
        }
    }
}

/// What the provider serves, shared with its HTTP handlers.
struct State {
    /// The issuer discovery names (the TLS front's URL once there is one).
    issuer: Mutex<String>,
    /// The `jwks_uri` discovery names, when not `<issuer>/jwks`.
    jwks_uri: Mutex<Option<String>>,
    keys: Mutex<Vec<SigningKey>>,
    /// Extra members published with every key, to make the key set this many bytes larger.
    padding: AtomicUsize,
    /// Send the key set in chunks, without a Content-Length.
    streamed: std::sync::atomic::AtomicBool,
    jwks_fetches: AtomicUsize,
}

/// A running test provider. Stops when dropped.
pub struct TestIssuer {
    pub issuer: String,
    /// Signs [`TestIssuer::token`]s, even after it is retired from the published set.
    default_key: SigningKey,
    state: Arc<State>,
    server: ServerHandle,
}

impl TestIssuer {
    /// Starts a provider with one RS256 key (`rsa-1`) and one ES256 key (`ec-1`).
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts a provider on `port` (0 for any free one).
    pub async fn start_on(port: u16) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("a loopback port");
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let default_key = SigningKey::generate("rsa-1", Algorithm::RS256);
        let state = Arc::new(State {
            issuer: Mutex::new(issuer.clone()),
            jwks_uri: Mutex::new(None),
            keys: Mutex::new(vec![
                default_key.clone(),
                SigningKey::generate("ec-1", Algorithm::ES256),
            ]),
            padding: AtomicUsize::new(0),
            streamed: std::sync::atomic::AtomicBool::new(false),
            jwks_fetches: AtomicUsize::new(0),
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("the test issuer listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            issuer,
            default_key,
            state,
            server: handle,
        }
    }

    pub fn port(&self) -> u16 {
        self.issuer.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The service settings that point at this provider.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OIDC_CONFIGURATION_URL", self.configuration_url()),
            ("OIDC_AUDIENCE", AUDIENCE.to_owned()),
        ]
    }

    /// How many times the key set has been fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Publishes another key.
    pub fn add_key(&self, key: SigningKey) {
        self.state.keys.lock().unwrap().push(key);
    }

    /// Removes a key from the published set.
    pub fn retire_key(&self, kid: &str) {
        self.state.keys.lock().unwrap().retain(|key| key.kid != kid);
    }

    /// Publishes `key` in place of the key with the same `kid`, as a provider restarted
    /// with fresh keys does.
    pub fn replace_key(&self, key: SigningKey) {
        let mut keys = self.state.keys.lock().unwrap();
        for published in keys.iter_mut().filter(|published| published.kid == key.kid) {
            *published = key.clone();
        }
    }

    /// Publishes `jwk` as it is: a key with any members, such as an encryption key.
    pub fn publish_jwk(&self, key: SigningKey, jwk: Value) {
        self.state
            .keys
            .lock()
            .unwrap()
            .push(SigningKey { jwk, ..key });
    }

    /// Makes the key set at least `bytes` larger, sent with a Content-Length or, when
    /// `streamed`, in chunks without one.
    pub fn pad_jwks(&self, bytes: usize, streamed: bool) {
        self.state.padding.store(bytes, Ordering::SeqCst);
        self.state.streamed.store(streamed, Ordering::SeqCst);
    }

    /// Serves discovery and keys over TLS too, with the certificate of `tls/issuer.pem`
    /// (signed by `tls/ca.pem`, for 127.0.0.1), and names the https:// issuer in discovery;
    /// `jwks_uri` names where discovery says the keys are. Returns the new issuer URL.
    pub async fn serve_tls(&self, jwks_uri: Option<String>) -> String {
        let port = tls_front(self.port()).await;
        let issuer = format!("https://127.0.0.1:{port}");
        *self.state.issuer.lock().unwrap() = issuer.clone();
        *self.state.jwks_uri.lock().unwrap() = jwks_uri;
        issuer
    }

    /// A key the provider publishes.
    pub fn key(&self, kid: &str) -> SigningKey {
        let keys = self.state.keys.lock().unwrap();
        keys.iter()
            .find(|key| key.kid == kid)
            .cloned()
            .unwrap_or_else(|| panic!("no key {kid}"))
    }

    /// A token with sensible claims, signed by `rsa-1`; adjust it before signing.
    pub fn token(&self) -> TokenBuilder {
        token_for(&self.issuer, &self.default_key)
    }

    /// Simulates an outage: the provider stops answering.
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

/// A token from `issuer` with sensible claims, signed by `key`; adjust it before signing.
pub fn token_for(issuer: &str, key: &SigningKey) -> TokenBuilder {
    let now = now();
    let claims = json!({
        "iss": issuer,
        "sub": "alice",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
        "typ": "Bearer",
        "azp": "test-app",
        "scope": "read write",
        "preferred_username": "alice",
        "email": "alice@example.test",
        "email_verified": true,
        "resource_access": { AUDIENCE: { "roles": ["user"] } },
    });
    TokenBuilder {
        key: key.clone(),
        header: header_for(&key.kid, key.algorithm),
        claims: claims.as_object().unwrap().clone(),
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// Builds one token, good or hostile.
pub struct TokenBuilder {
    key: SigningKey,
    header: Header,
    claims: Map<String, Value>,
}

impl TokenBuilder {
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_owned(), value);
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// This API's roles (`resource_access.<audience>.roles`, as Keycloak puts them).
    pub fn roles(self, roles: &[&str]) -> Self {
        self.claim("resource_access", json!({ AUDIENCE: { "roles": roles } }))
    }

    /// Lists header parameters as critical (RFC 7515 §4.1.11).
    pub fn crit(mut self, names: &[&str]) -> Self {
        self.header.crit = Some(names.iter().map(|name| (*name).to_owned()).collect());
        self
    }

    /// Signs a header and payload written out as text, duplicate members and all.
    pub fn sign_raw(self, header: &str, payload: &str) -> String {
        self.key.sign_raw(header, payload)
    }

    /// The header this token will be signed with, as JSON text.
    pub fn header_json(&self) -> String {
        serde_json::to_string(&self.header).unwrap()
    }

    /// The claims this token will carry, as JSON text.
    pub fn claims_json(&self) -> String {
        serde_json::to_string(&self.claims).unwrap()
    }

    /// Signs with `key`, naming it in the header.
    pub fn signed_by(mut self, key: &SigningKey) -> Self {
        self.header = header_for(&key.kid, key.algorithm);
        self.key = key.clone();
        self
    }

    /// Keeps the key but claims another `kid`.
    pub fn kid(mut self, kid: &str) -> Self {
        self.header.kid = Some(kid.to_owned());
        self
    }

    pub fn typ(mut self, typ: &str) -> Self {
        self.header.typ = Some(typ.to_owned());
        self
    }

    pub fn sign(self) -> String {
        jsonwebtoken::encode(&self.header, &self.claims, &self.key.encoding)
            .expect("the token signs")
    }

    /// `alg: none` with an empty signature.
    pub fn unsigned(self) -> String {
        let header = json!({ "alg": "none", "typ": "JWT", "kid": self.key.kid });
        format!(
            "{}.{}.",
            encode(&header),
            encode(&Value::Object(self.claims))
        )
    }

    /// HS256 with the public key as the HMAC secret: the classic algorithm-confusion forgery.
    pub fn hmac_with_public_key(self) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key.kid.clone());
        let secret = EncodingKey::from_secret(&self.key.public);
        jsonwebtoken::encode(&header, &self.claims, &secret).expect("the forgery signs")
    }
}

/// A token from the development issuer of the service at `address`, for `request`
/// (`{"sub": ..., "roles": [...], "scope": ...}`).
pub async fn dev_issuer_token(client: &reqwest::Client, address: &str, request: Value) -> String {
    let minted: Value = client
        .post(format!("{address}/dev-issuer/token"))
        .json(&request)
        .send()
        .await
        .expect("the development issuer answers")
        .json()
        .await
        .expect("a token response");
    minted["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token in {minted}"))
        .to_owned()
}

/// A TLS front on a free loopback port for the plain provider on `backend`: the service
/// verifies its certificate against `tls/ca.pem` (`OIDC_CA_BUNDLE`).
async fn tls_front(backend: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificate = CertificateDer::from_pem_slice(include_bytes!("tls/issuer.pem"))
        .expect("the test certificate");
    let key =
        PrivateKeyDer::from_pem_slice(include_bytes!("tls/issuer.key")).expect("the test key");
    crate::service::auth::install_crypto_provider();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .expect("a TLS configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("a loopback port");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    port
}

/// The test CA's certificate file, for `OIDC_CA_BUNDLE`.
pub fn test_ca_bundle() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/helpers/tls/ca.pem").to_owned()
}

fn header_for(kid: &str, algorithm: Algorithm) -> Header {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    header.typ = Some("at+jwt".to_owned());
    header
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

async fn discovery(state: web::Data<State>) -> HttpResponse {
    let issuer = state.issuer.lock().unwrap().clone();
    let jwks_uri = state.jwks_uri.lock().unwrap().clone();
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri.unwrap_or_else(|| format!("{issuer}/jwks")),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn jwks(state: web::Data<State>) -> HttpResponse {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let padding = state.padding.load(Ordering::SeqCst);
    let keys: Vec<Value> = state
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|key| {
            let mut jwk = key.jwk.clone();
            if padding > 0 {
                jwk["x-padding"] = json!("p".repeat(padding));
            }
            jwk
        })
        .collect();
    let body = web::Bytes::from(serde_json::to_vec(&json!({ "keys": keys })).unwrap());
    let mut response = HttpResponse::Ok();
    response
        .insert_header(("cache-control", "public, max-age=300"))
        .content_type("application/json");
    if state.streamed.load(Ordering::SeqCst) {
        let chunks: Vec<Result<web::Bytes, actix_web::Error>> = body
            .chunks(64 * 1024)
            .map(|chunk| Ok(web::Bytes::copy_from_slice(chunk)))
            .collect();
        response.streaming(futures_util::stream::iter(chunks))
    } else {
        response.body(body)
    }
}

/// The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo, which is what jsonwebtoken takes.
fn pkcs1(pkcs8: &[u8]) -> Vec<u8> {
    // One DER element: tag, length (short or long form), contents.
    fn element(der: &[u8]) -> (&[u8], &[u8]) {
        let (length, header) = match der[1] {
            short if short < 0x80 => (usize::from(short), 2),
            long => {
                let count = usize::from(long & 0x7f);
                let length = der[2..2 + count]
                    .iter()
                    .fold(0, |acc, byte| (acc << 8) | usize::from(*byte));
                (length, 2 + count)
            }
        };
        (&der[header..header + length], &der[header + length..])
    }
    let (info, _) = element(pkcs8); // PrivateKeyInfo SEQUENCE
    let (_, rest) = element(info); // version INTEGER
    let (_, rest) = element(rest); // AlgorithmIdentifier SEQUENCE
    let (private_key, _) = element(rest); // privateKey OCTET STRING
    private_key.to_vec()
}
