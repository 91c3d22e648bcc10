//! Routes that need a bearer token, for the tests of authentication itself: they use the
//! auth module's extractors and middleware the way any route of the service would, so the
//! auth tests hold whatever becomes of the sample API.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::service::auth::{self, AccessToken, OptionalAccessToken};

/// `/protected` (any valid token), `/me` (the token's identity), `/hello` (a token if one
/// is sent) and `/admin` (the admin role, checked by middleware), under `/api/v1`.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/protected", web::get().to(protected))
        .route("/me", web::get().to(me))
        .route("/hello", web::get().to(hello))
        .service(
            web::scope("/admin")
                .wrap(auth::require(|token| token.require_role("admin")))
                .route("", web::get().to(protected)),
        );
}

async fn protected(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": "Authorized access", "sub": token.sub }))
}

async fn me(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "sub": token.sub,
        "username": token.preferred_username,
        "email": token.email,
        "roles": token.roles(),
        "scopes": token.scopes(),
    }))
}

async fn hello(token: OptionalAccessToken) -> HttpResponse {
    let name = token
        .0
        .as_ref()
        .map_or("anonymous", |token| token.sub.as_str());
    HttpResponse::Ok().json(json!({ "message": format!("Hello, {name}") }))
}
