//! A bare actix-web server: `GET /health/liveness`, and `GET /api/v1/protected`, which does
//! one jsonwebtoken signature check (with the `exp`, `iss` and `aud` checks that come with
//! it; RS256 and ES256) and nothing else. No middleware, no logs, no cache.
//!
//! Environment: `PORT` (0 for any free port), `WORKERS`, `FLOOR_JWKS` (a file holding the
//! provider's public JWK set), `FLOOR_ISSUER`, `FLOOR_AUDIENCE`. Prints `listening PORT`
//! once bound.

use std::collections::HashMap;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// The `iss`, `aud` and `exp` checks, built once per algorithm.
    validations: Vec<(Algorithm, Validation)>,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
}

async fn liveness() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "alive" }))
}

async fn protected(request: HttpRequest, keys: web::Data<Keys>) -> HttpResponse {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else {
        return HttpResponse::Unauthorized().finish();
    };
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Some(key) = header.kid.as_deref().and_then(|kid| keys.by_kid.get(kid)) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Some((_, validation)) = keys.validations.iter().find(|(alg, _)| *alg == header.alg) else {
        return HttpResponse::Unauthorized().finish();
    };
    match jsonwebtoken::decode::<Claims>(token, key, validation) {
        Ok(data) => HttpResponse::Ok()
            .json(serde_json::json!({ "message": "Authorized access", "sub": data.claims.sub })),
        Err(_) => HttpResponse::Unauthorized().finish(),
    }
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set"))
}

fn main() -> std::io::Result<()> {
    let jwks: JwkSet = serde_json::from_slice(&std::fs::read(var("FLOOR_JWKS"))?)
        .map_err(std::io::Error::other)?;
    let by_kid = jwks
        .keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            Some((kid, DecodingKey::from_jwk(jwk).ok()?))
        })
        .collect();
    let (issuer, audience) = (var("FLOOR_ISSUER"), var("FLOOR_AUDIENCE"));
    let validations = [Algorithm::RS256, Algorithm::ES256]
        .into_iter()
        .map(|algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[&issuer]);
            validation.set_audience(&[&audience]);
            (algorithm, validation)
        })
        .collect();
    let keys = web::Data::new(Keys {
        by_kid,
        validations,
    });
    let port: u16 = var("PORT").parse().map_err(std::io::Error::other)?;
    let workers: usize = var("WORKERS").parse().map_err(std::io::Error::other)?;
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(keys.clone())
                .route("/health/liveness", web::get().to(liveness))
                .route("/api/v1/protected", web::get().to(protected))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?;
        println!("listening {}", server.addrs()[0].port());
        server.run().await
    })
}
