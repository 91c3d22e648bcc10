//! What every route gets: security response headers, CORS, and a time limit.

use std::time::Duration;

use actix_cors::Cors;
use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::{DefaultHeaders, Next};

use crate::problem::Problem;

/// Headers for an API that browsers should neither sniff, frame, cache nor leak referrers
/// from.
const SECURITY_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
    (header::CACHE_CONTROL, "no-store"),
];

/// Adds [`SECURITY_HEADERS`] to every response; a handler that sets one keeps its value.
pub fn security_headers() -> DefaultHeaders {
    SECURITY_HEADERS
        .into_iter()
        .fold(DefaultHeaders::new(), |headers, header| headers.add(header))
}

/// CORS: no cross-origin browser request is allowed unless its origin is listed in
/// `CORS_ALLOWED_ORIGINS`.
pub fn cors(allowed_origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .allowed_header("x-request-id")
        .expose_headers([header::WWW_AUTHENTICATE])
        .expose_headers(["x-request-id"])
        .max_age(3600);
    for origin in allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Answers 503 when a request takes longer than `limit`; the handler is cancelled.
///
/// The answer travels as an error: once a request is handed on, only the error path can
/// still produce a response here. It carries the security headers itself, since the
/// `DefaultHeaders` middleware only sees successful responses.
pub async fn time_limit(
    limit: Duration,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if limit.is_zero() {
        return next.call(request).await;
    }
    match tokio::time::timeout(limit, next.call(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            let mut response = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .with_detail(format!(
                    "the request took longer than {} s",
                    limit.as_secs()
                ))
                .to_response();
            for (name, value) in SECURITY_HEADERS {
                response
                    .headers_mut()
                    .insert(name, header::HeaderValue::from_static(value));
            }
            Err(InternalError::from_response("request timed out", response).into())
        }
    }
}
