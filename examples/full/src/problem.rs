//! Error responses as RFC 9457 problem details (`application/problem+json`).

use actix_web::error::{InternalError, JsonPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// A problem details body. `type` stays `about:blank`, so `title` is the status text.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: None,
        }
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
