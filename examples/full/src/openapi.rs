//! The API's OpenAPI 3.1 description, generated from the handlers' `#[utoipa::path]`
//! annotations: served at `/openapi.json`, browsable at `/docs` (Swagger UI), and exported
//! with `cargo run -- openapi > openapi.json`. `tests/openapi.rs` fails when the exported
//! file and the served document differ, so a change to the API shows up in review.

use actix_web::http::header::{self, ContentType};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::problem::Problem;

// ANCHOR: api_doc
/// Every documented route. A handler missing here is missing from the document.
#[derive(OpenApi)]
#[openapi(
    paths(
        crate::health::liveness,
        crate::health::readiness,
        crate::api::protected,
        crate::api::me,
        crate::api::hello,
        crate::api::admin,
        crate::users::get_me,
        crate::users::put_me,
        crate::users::list,
        crate::users::get_one,
        crate::users::delete_one,
    ),
    // Referenced by the refusals below, which utoipa does not collect on its own.
    components(schemas(Problem)),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "sample", description = "The sample API: each route needs a bearer token"),
        (name = "users", description = "User profiles, identified by the token's subject"),
    )
)]
pub struct ApiDoc;
// ANCHOR_END: api_doc

/// The document as the service serves and exports it.
pub fn to_json() -> String {
    let mut document = ApiDoc::openapi();
    // Cargo.toml names no license (the service is not published); utoipa would print "".
    document.info.license = None;
    document
        .to_pretty_json()
        .expect("a document built from static types always serializes")
}

/// Swagger UI loads its own scripts and styles, which the API's `default-src 'none'` forbids.
const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

/// Mounts `/openapi.json` and the Swagger UI at `/docs`.
pub fn routes(config: &mut web::ServiceConfig) {
    let document = web::Bytes::from(to_json());
    config
        .route(
            "/openapi.json",
            web::get().to(move || {
                let document = document.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type(ContentType::json())
                        .body(document)
                }
            }),
        )
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/docs/"))
                    .finish()
            }),
        )
        .service(
            web::scope("/docs")
                .wrap(DefaultHeaders::new().add((
                    header::CONTENT_SECURITY_POLICY,
                    DOCS_CONTENT_SECURITY_POLICY,
                )))
                .service(SwaggerUi::new("/{_:.*}").config(Config::from("/openapi.json"))),
        );
}

/// Declares the `bearer` security scheme the routes refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An access token (RFC 9068 JWT) from the OpenID provider named by OIDC_ISSUER_URL. \
                 Role names listed in a route's requirement are roles the token must carry.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// What every route behind a bearer token may answer besides its own responses.
#[derive(IntoResponses)]
pub enum BearerRefusals {
    /// No bearer token, or a refused one; `WWW-Authenticate` says why (RFC 6750).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The identity provider's keys are not loaded yet, or a dependency is down.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// What a route that needs a role answers when the token lacks it.
#[derive(IntoResponses)]
pub enum RoleRefusal {
    /// The token lacks the role the route needs (`insufficient_scope`).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// What a route answers when the resource it names does not exist.
#[derive(IntoResponses)]
pub enum NotFound {
    /// No such user.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// What a route reading a JSON body answers when the body is refused.
#[derive(IntoResponses)]
pub enum BodyRefusals {
    /// The body is not well-formed JSON for this route.
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(Problem),
    /// The body is larger than JSON_BODY_LIMIT.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedType(Problem),
    /// A field's value was refused; `invalid-params` names it.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}
