//! The sample API, the original guide's routes: each needs a valid bearer token.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;

use crate::auth::{self, AccessToken, OptionalAccessToken};

/// Mounts `/api/v1`.
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/api/v1")
            .route("/protected", web::get().to(protected))
            .route("/me", web::get().to(me))
            .route("/hello", web::get().to(hello))
            .service(
                // A whole scope behind one guard: every route here needs the admin role.
                web::scope("/admin")
                    .wrap(auth::require(|token| token.require_role("admin")))
                    .route("", web::get().to(admin)),
            ),
    );
}

async fn protected(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": "Authorized access", "sub": token.sub }))
}

/// Who the caller is, as the token says.
#[derive(Serialize)]
struct Identity<'a> {
    sub: &'a str,
    username: Option<&'a str>,
    email: Option<&'a str>,
    roles: Vec<&'a str>,
    scopes: Vec<&'a str>,
}

async fn me(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(Identity {
        sub: &token.sub,
        username: token.preferred_username.as_deref(),
        email: token.email.as_deref(),
        roles: token.roles().iter().map(String::as_str).collect(),
        scopes: token.scopes().iter().map(String::as_str).collect(),
    })
}

/// Open to everyone; a caller who sends a token is greeted by name.
async fn hello(token: OptionalAccessToken) -> HttpResponse {
    let name = token
        .0
        .as_ref()
        .map_or("anonymous", |token| token.sub.as_str());
    HttpResponse::Ok().json(json!({ "message": format!("Hello, {name}") }))
}

async fn admin(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": "Admin access", "sub": token.sub }))
}
