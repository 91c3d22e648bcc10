//! Error responses as RFC 9457 problem details (`application/problem+json`).

use actix_web::error::{InternalError, JsonPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// A problem details body. `type` stays `about:blank`, so `title` is the status text.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// Which inputs were refused and why (the extension RFC 9457 §3 shows as an example).
    #[serde(rename = "invalid-params", skip_serializing_if = "Vec::is_empty")]
    invalid_params: Vec<InvalidParam>,
}

/// One refused input: its name and the reason.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvalidParam {
    pub name: String,
    pub reason: String,
}

impl Problem {
    pub fn new(status: StatusCode) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: None,
            invalid_params: Vec::new(),
        }
    }

    /// Names an input that was refused, and why.
    pub fn with_invalid_param(
        mut self,
        name: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        self.invalid_params.push(InvalidParam {
            name: name.into(),
            reason: reason.into(),
        });
        self
    }

    /// Adds a human-readable explanation of this occurrence.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn to_response(&self) -> HttpResponse {
        HttpResponse::build(self.status())
            .content_type("application/problem+json")
            .json(self)
    }
}

/// Answers requests that match no route.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    Problem::new(StatusCode::NOT_FOUND)
        .with_detail(format!(
            "no route for {} {}",
            request.method(),
            request.path()
        ))
        .to_response()
}

/// Query-string extractor settings: rejections as problem details.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _request| {
        let response = Problem::new(StatusCode::BAD_REQUEST)
            .with_detail(error.to_string())
            .to_response();
        InternalError::from_response(error, response).into()
    })
}

/// JSON extractor settings: the body size limit, and rejections as problem details.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|error, _request| {
            let status = match &error {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                JsonPayloadError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                JsonPayloadError::Deserialize(error) if error.is_data() => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::BAD_REQUEST,
            };
            let response = Problem::new(status)
                .with_detail(error.to_string())
                .to_response();
            InternalError::from_response(error, response).into()
        })
}

/// What a route answers when the resource it names does not exist.
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoResponses)]
pub enum NotFound {
    /// Nothing exists at the path.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// What a route reading a JSON body answers when the body is refused.
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoResponses)]
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
