//! The sample API: routes that show each way to require a bearer token.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::auth::{self, AccessToken, OptionalAccessToken};

/// Mounts `/protected`, `/me`, `/hello` and `/admin` in the `/api/v1` scope.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/protected", web::get().to(protected))
        .route("/me", web::get().to(me))
        .route("/hello", web::get().to(hello))
        .service(
            // A whole scope behind one guard: every route here needs the admin role.
            web::scope("/admin")
                .wrap(auth::require(|token| token.require_role("admin")))
                .route("", web::get().to(admin)),
        );
}

/// The sample routes in the API description.
#[cfg(feature = "openapi")]
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(protected, me, hello, admin),
    tags((name = "sample", description = "The sample API: each route needs a bearer token"))
)]
pub struct ApiDoc;

/// A greeting, and whom the token names when there is one.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Message<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
}

/// Any valid token gets in.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/api/v1/protected",
        tag = "sample",
        security(("bearer" = [])),
        responses((status = 200, description = "The token is valid", body = Message), crate::auth::BearerRefusals),
    )
)]
pub(crate) async fn protected(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(Message {
        message: "Authorized access",
        sub: Some(&token.sub),
    })
}

/// Who the caller is, as the token says.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Identity<'a> {
    sub: &'a str,
    username: Option<&'a str>,
    email: Option<&'a str>,
    roles: Vec<&'a str>,
    scopes: Vec<&'a str>,
}

/// The caller's identity, roles and scopes, read from the token.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/api/v1/me",
        tag = "sample",
        security(("bearer" = [])),
        responses((status = 200, description = "The caller's identity", body = Identity), crate::auth::BearerRefusals),
    )
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
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/api/v1/hello",
        tag = "sample",
        security((), ("bearer" = [])),
        responses((status = 200, description = "A greeting", body = Message), crate::auth::BearerRefusals),
    )
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

/// Only for tokens with the `admin` role.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/api/v1/admin",
        tag = "sample",
        security(("bearer" = ["admin"])),
        responses(
            (status = 200, description = "The token has the admin role", body = Message),
            crate::auth::BearerRefusals,
            crate::auth::RoleRefusal,
        ),
    )
)]
pub(crate) async fn admin(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(Message {
        message: "Admin access",
        sub: Some(&token.sub),
    })
}
