//! Authentication failures and their HTTP answers (RFC 6750 §3, bodies as RFC 9457).

use actix_web::http::StatusCode;
use actix_web::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};

use crate::problem::Problem;

/// Why a request was not let through.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials at all, or another scheme than Bearer: a 401 without an error code,
    /// as RFC 6750 §3.1 asks when the client may not know authentication is needed.
    #[error("a bearer token is required")]
    MissingToken,
    /// More than one `Authorization` header: 400 `invalid_request` (RFC 6750 §3.1, a
    /// parameter repeated). Taking one of them would let a proxy that checks the other be
    /// told one identity and the service another.
    #[error("the request has more than one Authorization header")]
    RepeatedAuthorization,
    /// A token was sent and refused: 401 `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(Rejection),
    /// A valid token without the scope or role the route needs: 403 `insufficient_scope`.
    #[error("insufficient scope: the token lacks {required}")]
    InsufficientScope {
        required: String,
        scope: Option<String>,
    },
    /// The provider's keys are not loaded (yet, or any more: they went stale while it was
    /// unreachable), so no token can be checked: 503.
    #[error("the identity provider's keys are not available")]
    KeysUnavailable,
}

/// The reason a token was refused; its text is the `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the token is larger than the accepted size")]
    TooLarge,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token's type is not at+jwt")]
    Type,
    #[error("the token is not an access token")]
    NotAccessToken,
    #[error("the token is bound to its holder's key and is not accepted as a bearer token")]
    SenderConstrained,
    #[error("the token has a critical header parameter this service does not understand")]
    CriticalHeader,
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token's issuer is not trusted")]
    Issuer,
    #[error("the token's audience does not include this service")]
    Audience,
    #[error("the token was issued to a client that may not call this service")]
    Client,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("the token's claims are invalid")]
    Claims,
}

impl Rejection {
    /// A stable name for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::Type => "type",
            Self::NotAccessToken => "not_access_token",
            Self::SenderConstrained => "sender_constrained",
            Self::CriticalHeader => "crit",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Client => "client",
            Self::MissingClaim => "missing_claim",
            Self::Claims => "claims",
        }
    }
}

impl AuthError {
    /// A stable name for logs and metrics: the rejection code for a refused token.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::RepeatedAuthorization => "invalid_request",
            Self::InvalidToken(rejection) => rejection.code(),
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::RepeatedAuthorization => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // Every refusal turns into a response here exactly once: the one place to count them.
        metrics::counter!("auth_rejections_total", "reason" => self.reason()).increment(1);
        let mut response = Problem::new(self.status_code())
            .with_detail(self.to_string())
            .to_response();
        let challenge = match self {
            Self::MissingToken => Some("Bearer".to_owned()),
            Self::RepeatedAuthorization => Some(format!(
                r#"Bearer error="invalid_request", error_description="{self}""#
            )),
            Self::InvalidToken(reason) => Some(format!(
                r#"Bearer error="invalid_token", error_description="{reason}""#
            )),
            Self::InsufficientScope { scope, .. } => Some(match scope {
                Some(scope) => format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
                None => r#"Bearer error="insufficient_scope""#.to_owned(),
            }),
            Self::KeysUnavailable => None,
        };
        let headers = response.headers_mut();
        if let Some(value) = challenge.and_then(|challenge| challenge.parse().ok()) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        if matches!(self, Self::KeysUnavailable) {
            headers.insert(RETRY_AFTER, 5.into());
        }
        response
    }
}

/// What every route behind a bearer token may answer besides its own responses.
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoResponses)]
pub enum BearerRefusals {
    /// No bearer token, or a refused one; `WWW-Authenticate` says why (RFC 6750).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The identity provider's keys are not loaded yet, or a dependency is down.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// What a route that needs a role answers when the token lacks it.
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoResponses)]
pub enum RoleRefusal {
    /// The token lacks the role the route needs (`insufficient_scope`).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// The bearer scheme the routes' requirements name, and the problem body of every refusal,
/// in the API description.
#[cfg(feature = "openapi")]
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(Problem)), modifiers(&BearerScheme))]
pub struct ApiDoc;

/// Declares the `bearer` security scheme.
#[cfg(feature = "openapi")]
struct BearerScheme;

#[cfg(feature = "openapi")]
impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
