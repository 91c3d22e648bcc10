//! Request ids: every request gets one, every log line of the request carries it, and the
//! response returns it in `x-request-id`.
//!
//! A well-formed id sent by the client (or by a proxy in front of the service) is kept, so
//! one id follows a call across services. Anything else is replaced with a fresh UUID.

use std::fmt;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

/// The header that carries the id, in requests and responses.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id that is kept.
const MAX_LEN: usize = 128;

/// The id of the request being served; a handler can take it from the request extensions.
///
/// Kept as the header value it travels in: an incoming id is shared with the request's
/// headers, not copied, and the response header is a clone of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Keeps an incoming id made of 1 to 128 letters, digits, `-`, `_`, `.` or `:`;
    /// anything that could forge log fields or break a header is refused.
    pub fn from_header(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
        if bytes.is_empty() || bytes.len() > MAX_LEN || !bytes.iter().all(allowed) {
            return None;
        }
        Some(Self(value.clone()))
    }

    /// A fresh random id: a version 4 UUID.
    pub fn generate() -> Self {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::new_v4().hyphenated();
        let value = HeaderValue::from_str(id.encode_lower(&mut text))
            .expect("a UUID is a valid header value");
        Self(value)
    }

    /// The id; only the characters [`RequestId::from_header`] allows.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Middleware: picks the request id before anything else runs and returns it on the response.
pub async fn propagate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(RequestId::from_header)
        .unwrap_or_else(RequestId::generate);
    let header = id.0.clone();
    request.extensions_mut().insert(id);
    match next.call(request).await {
        Ok(mut response) => {
            response.headers_mut().insert(REQUEST_ID_HEADER, header);
            Ok(response)
        }
        // An error becomes a response only past this middleware: give that response the id.
        Err(error) => {
            let mut response = error.error_response();
            response.headers_mut().insert(REQUEST_ID_HEADER, header);
            Err(InternalError::from_response(error, response).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<RequestId> {
        RequestId::from_header(&HeaderValue::from_str(value).unwrap())
    }

    #[test]
    fn well_formed_ids_are_kept() {
        assert_eq!(
            parse("abc-123_x.y:z").as_ref().map(RequestId::as_str),
            Some("abc-123_x.y:z")
        );
        assert!(parse(&"a".repeat(MAX_LEN)).is_some());
    }

    #[test]
    fn ids_that_could_forge_log_fields_are_refused() {
        for value in [
            "",
            "a b",
            "a\"b",
            "{\"level\":60}",
            "a=b",
            &"a".repeat(MAX_LEN + 1),
        ] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn generated_ids_are_unique_uuids() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(&a.to_string()).is_ok());
    }
}
