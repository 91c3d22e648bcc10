//! Getting a verified token into a handler: extractors and a middleware for whole scopes.

use std::future::{Ready, ready};
use std::pin::Pin;

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::header::AUTHORIZATION;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, web};
use actix_web_httpauth::middleware::HttpAuthentication;
use futures_util::FutureExt;
use futures_util::future::{Either, Map};

use super::claims::AccessToken;
use super::error::{AuthError, Rejection};
use super::validator::{Judgement, TokenValidator};

impl FromRequest for AccessToken {
    type Error = AuthError;
    type Future = Map<Authenticated, fn(Found) -> Result<Self, AuthError>>;

    /// Requires a valid bearer token: 401 without one, 401 for a refused one.
    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        authenticate(request).map(|found| found?.ok_or(AuthError::MissingToken))
    }
}

/// A token when the caller sent one. No `Authorization` header gives `None`; a refused
/// token, or credentials of another scheme, is still a 401, never silently treated as
/// anonymous.
#[derive(Debug, Clone)]
pub struct OptionalAccessToken(pub Option<AccessToken>);

impl FromRequest for OptionalAccessToken {
    type Error = AuthError;
    type Future = Map<Authenticated, fn(Found) -> Result<Self, AuthError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        authenticate(request).map(|found| found.map(OptionalAccessToken))
    }
}

/// The request's token, `None` when it sent none.
type Found = Result<Option<AccessToken>, AuthError>;

/// [`Found`] at once, or once the key set is fetched again.
type Authenticated = Either<Ready<Found>, Pin<Box<dyn Future<Output = Found>>>>;

/// Validates the request's bearer token once; later extractions reuse the result. A token
/// this worker accepted lately is answered at once, with nothing boxed or stored; any other
/// is judged at once with the keys at hand, and stored for the request's other extractors.
/// Only a token that waits for the key set to be fetched again (an unknown `kid`, or a
/// signature failing under the key it names) gets a future of its own.
fn authenticate(request: &HttpRequest) -> Authenticated {
    if let Some(token) = verified(request) {
        return Either::Left(ready(Ok(Some(token))));
    }
    let mut headers = request.headers().get_all(AUTHORIZATION);
    let Some(header) = headers.next() else {
        return Either::Left(ready(Ok(None)));
    };
    if headers.next().is_some() {
        return Either::Left(ready(Err(AuthError::RepeatedAuthorization)));
    }
    let token = match bearer_token(header.as_bytes()) {
        Ok(token) => token,
        Err(refused) => return Either::Left(ready(Err(refused))),
    };
    let token_validator = validator(request);
    if let Some(token) = token_validator.recent(token) {
        return Either::Left(ready(Ok(Some(token))));
    }
    let fetch = match text(token).map(|token| token_validator.judge(token)) {
        Ok(Judgement::Done(verdict)) => {
            return Either::Left(ready(verdict.map(|token| stored(request, token))));
        }
        Ok(Judgement::FetchKeys(fetch)) => fetch,
        Err(refused) => return Either::Left(ready(Err(refused))),
    };
    let (request, header) = (request.clone(), header.clone());
    Either::Right(Box::pin(async move {
        // Another extractor of the same request may have verified it meanwhile: actix-web
        // makes every extractor's future before it polls any.
        if let Some(token) = verified(&request) {
            return Ok(Some(token));
        }
        let token = text(bearer_token(header.as_bytes())?)?;
        let token = validator(&request).judge_after_fetch(token, fetch).await?;
        Ok(stored(&request, token))
    }))
}

/// Keeps a verified token for the request's other extractors and its middleware.
fn stored(request: &HttpRequest, token: AccessToken) -> Option<AccessToken> {
    request.extensions_mut().insert(token.clone());
    Some(token)
}

/// The token an extractor or a middleware already verified for this request.
fn verified(request: &HttpRequest) -> Option<AccessToken> {
    request.extensions().get::<AccessToken>().cloned()
}

fn validator(request: &HttpRequest) -> &TokenValidator {
    request
        .app_data::<web::Data<TokenValidator>>()
        .expect("the token validator is registered in server::Application")
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), as the header
/// carries it: a token this worker accepted lately is recognised by its bytes. Another
/// scheme gets the answer to a missing token (a 401 with a bare `Bearer` challenge); what
/// follows `Bearer ` is the validator's to accept or refuse (and to log), even when it is
/// not a well-formed token, once it is [`text`].
fn bearer_token(header: &[u8]) -> Result<&[u8], AuthError> {
    let (scheme, token) = match header.iter().position(|byte| *byte == b' ') {
        Some(space) => (&header[..space], &header[space + 1..]),
        None => (header, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::MissingToken);
    }
    let start = token
        .iter()
        .position(|byte| *byte != b' ')
        .unwrap_or(token.len());
    Ok(&token[start..])
}

/// A token that is not even text (bytes that are not UTF-8) is malformed.
fn text(token: &[u8]) -> Result<&str, AuthError> {
    std::str::from_utf8(token).map_err(|_| AuthError::InvalidToken(Rejection::Malformed))
}

type Check = fn(&AccessToken) -> Result<(), AuthError>;

/// What the middleware's callback gives back: the request, or the refusal and the request.
pub type Checked = Ready<Result<ServiceRequest, (Error, ServiceRequest)>>;

/// Middleware requiring a valid bearer token on every route of a scope:
/// `web::scope("/admin").wrap(auth::protect())`. Handlers inside still take
/// `AccessToken` as an argument, without validating twice.
pub fn protect() -> HttpAuthentication<AccessToken, impl Fn(ServiceRequest, AccessToken) -> Checked>
{
    require(|_| Ok(()))
}

/// Like [`protect`], and the token must also pass `check`, for example
/// `auth::require(|token| token.require_role("admin"))`.
pub fn require(
    check: Check,
) -> HttpAuthentication<AccessToken, impl Fn(ServiceRequest, AccessToken) -> Checked> {
    HttpAuthentication::with_fn(move |request: ServiceRequest, token: AccessToken| {
        ready(match check(&token) {
            Ok(()) => {
                request.extensions_mut().insert(token);
                Ok(request)
            }
            Err(error) => Err((error.into(), request)),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_recognised_in_any_case() {
        assert_eq!(
            bearer_token(b"Bearer abc.def-_~+/=").unwrap(),
            b"abc.def-_~+/="
        );
        assert_eq!(bearer_token(b"bearer  abc").unwrap(), b"abc");
        // Whatever follows is the validator's to refuse (and to log).
        assert_eq!(bearer_token(b"Bearer a b").unwrap(), b"a b");
        assert_eq!(bearer_token(b"Bearer").unwrap(), b"");
        assert_eq!(bearer_token(b"Bearer   ").unwrap(), b"");
        assert!(matches!(
            bearer_token(b"Basic dXNlcg=="),
            Err(AuthError::MissingToken)
        ));
        assert!(matches!(
            bearer_token(b"Basic \xff"),
            Err(AuthError::MissingToken)
        ));
    }

    #[test]
    fn a_bearer_token_that_is_not_text_is_malformed_not_missing() {
        // RFC 6750 §3.1: the bare challenge is for a request without credentials.
        assert!(matches!(
            bearer_token(b"Bearer eyJ\xff\xfe").and_then(text),
            Err(AuthError::InvalidToken(Rejection::Malformed))
        ));
        assert_eq!(text(b"eyJ.e30.c2ln").unwrap(), "eyJ.e30.c2ln");
    }
}
