//! The sample API, the original guide's routes: each needs a valid bearer token.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::auth::{self, AccessToken, OptionalAccessToken};
use crate::openapi::{BearerRefusals, RoleRefusal};

// ANCHOR: routes
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
// ANCHOR_END: routes

/// A greeting, and whom the token names when there is one.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Message<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
}

/// Any valid token gets in.
#[utoipa::path(
    get,
    path = "/api/v1/protected",
    tag = "sample",
    security(("bearer" = [])),
    responses((status = 200, description = "The token is valid", body = Message), BearerRefusals),
)]
pub(crate) async fn protected(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(Message {
        message: "Authorized access",
        sub: Some(&token.sub),
    })
}

/// Who the caller is, as the token says.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Identity<'a> {
    sub: &'a str,
    username: Option<&'a str>,
    email: Option<&'a str>,
    roles: Vec<&'a str>,
    scopes: Vec<&'a str>,
}

/// The caller's identity, roles and scopes, read from the token.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "sample",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's identity", body = Identity), BearerRefusals),
)]
pub(crate) async fn me(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(Identity {
        sub: &token.sub,
        username: token.preferred_username.as_deref(),
        email: token.email.as_deref(),
        roles: token.roles().iter().map(String::as_str).collect(),
        scopes: token.scopes().iter().map(String::as_str).collect(),
    })
}

/// Open to everyone; a caller who sends a token is greeted by name. A token that is sent
/// must be valid.
#[utoipa::path(
    get,
    path = "/api/v1/hello",
    tag = "sample",
    security((), ("bearer" = [])),
    responses((status = 200, description = "A greeting", body = Message), BearerRefusals),
)]
pub(crate) async fn hello(token: OptionalAccessToken) -> HttpResponse {
    let name = token
        .0
        .as_ref()
        .map_or("anonymous", |token| token.sub.as_str());
    HttpResponse::Ok().json(Message {
        message: &format!("Hello, {name}"),
        sub: None,
    })
}

// ANCHOR: admin_path
/// Only for tokens with the `admin` role.
#[utoipa::path(
    get,
    path = "/api/v1/admin",
    tag = "sample",
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The token has the admin role", body = Message),
        BearerRefusals,
        RoleRefusal,
    ),
)]
// ANCHOR_END: admin_path
pub(crate) async fn admin(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(Message {
        message: "Admin access",
        sub: Some(&token.sub),
    })
}
