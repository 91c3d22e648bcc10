//! The API's OpenAPI 3.1 description, assembled from what each module documents next to
//! its handlers (`utoipa::path` annotations, on with the `openapi` feature): served at
//! `/openapi.json`, browsable at `/docs` (Swagger UI), and exported with
//! `cargo run --bin openapi > openapi.json`. The tests fail when the exported file and the
//! served document differ, so a change to the API shows up in review.

use actix_web::http::header::{self, ContentType};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The whole document: each module's routes, one line each.
pub fn document() -> Document {
    let mut document = crate::health::ApiDoc::openapi();
    #[cfg(feature = "auth")]
    document.merge(crate::auth::ApiDoc::openapi());
    #[cfg(feature = "auth")]
    document.merge(crate::api::ApiDoc::openapi());
    #[cfg(feature = "database")]
    document.merge(crate::users::ApiDoc::openapi());
    // Cargo.toml names no license (the service is not published); utoipa would print "".
    document.info.license = None;
    document
}

/// The document as the service serves and exports it.
pub fn to_json() -> String {
    document()
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
