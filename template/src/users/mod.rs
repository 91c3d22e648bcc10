//! The sample domain: user profiles under `/api/v1/users`, identity from the token.
//!
//! This module holds the HTTP side (routes, handlers, what goes over the wire, input
//! checks); [`store`] holds the queries.

mod store;

use crate::auth::{self, AccessToken};
use crate::db::DbPool;
use crate::problem::Problem;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};

/// Mounts `/users` in the `/api/v1` scope: `/users/me` for every caller, the rest for the
/// `admin` role.
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/users")
            .route("/me", web::get().to(get_me))
            .route("/me", web::put().to(put_me))
            .service(
                web::scope("")
                    .wrap(auth::require(|token| token.require_role("admin")))
                    .route("", web::get().to(list))
                    .route("/{id}", web::get().to(get_one))
                    .route("/{id}", web::delete().to(delete_one)),
            ),
    );
}

/// The users routes in the API description.
#[cfg(feature = "openapi")]
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_me, put_me, list, get_one, delete_one),
    tags((name = "users", description = "User profiles, identified by the token's subject"))
)]
pub struct ApiDoc;

/// A user's profile as the API shows it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What `PUT /users/me` accepts; absent fields come from the token (the email: its verified one).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// Why a users request failed; each maps to one HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no user {0:?}")]
    NotFound(String),
    #[error("the email address is already used by another user")]
    Conflict,
    #[error("the profile was deleted by an administrator")]
    Deleted,
    #[error("the database is not available")]
    Unavailable,
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for UsersError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable
            }
            _ => Self::Database(error),
        }
    }
}

impl ResponseError for UsersError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Deleted => StatusCode::GONE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let problem = Problem::new(self.status_code());
        match self {
            Self::Invalid { field, reason } => problem
                .with_detail(format!("{field}: {reason}"))
                .with_invalid_param(*field, reason.clone()),
            Self::Database(error) => {
                // The details stay in the log; the caller learns only that it failed.
                tracing::error!(%error, "database error");
                problem
            }
            other => problem.with_detail(other.to_string()),
        }
        .to_response()
    }
}

/// The caller's profile.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/api/v1/users/me",
        tag = "users",
        security(("bearer" = [])),
        responses((status = 200, description = "The caller's profile", body = User), crate::problem::NotFound, crate::auth::BearerRefusals),
    )
)]
pub(crate) async fn get_me(
    token: AccessToken,
    pool: web::Data<DbPool>,
) -> Result<HttpResponse, UsersError> {
    let user = store::find(&pool, &token.sub).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Creates or updates the caller's profile: 201 when created, 200 when updated.
///
/// A profile an administrator deleted stays deleted: 410, until the profile is purged.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        put,
        path = "/api/v1/users/me",
        tag = "users",
        security(("bearer" = [])),
        request_body = ProfileUpdate,
        responses(
            (status = 200, description = "The profile was updated", body = User),
            (status = 201, description = "The profile was created", body = User),
            (status = 409, description = "The email address belongs to another user", body = Problem, content_type = "application/problem+json"),
            (status = 410, description = "An administrator deleted the profile", body = Problem, content_type = "application/problem+json"),
            crate::problem::BodyRefusals,
            crate::auth::BearerRefusals,
        ),
    )
)]
pub(crate) async fn put_me(
    token: AccessToken,
    pool: web::Data<DbPool>,
    update: web::Json<ProfileUpdate>,
) -> Result<HttpResponse, UsersError> {
    let update = update.into_inner();
    let display_name = update
        .display_name
        .or_else(|| token.preferred_username.clone())
        .unwrap_or_else(|| token.sub.clone());
    let display_name = validate_display_name(&display_name)?;
    let email = caller_email(update.email.as_deref(), token.verified_email())?;
    Ok(
        match store::save_profile(&pool, &token.sub, email.as_deref(), &display_name).await? {
            store::Saved::Created(user) => HttpResponse::Created().json(user),
            store::Saved::Updated(user) => HttpResponse::Ok().json(user),
        },
    )
}

/// Query parameters of `GET /users`. Read as text so a bad value gets a 422 naming it.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct Page {
    /// How many users to return, from 1 to 100 (20 when absent).
    #[cfg_attr(
        feature = "openapi",
        param(value_type = Option<u8>, minimum = 1, maximum = 100)
    )]
    limit: Option<String>,
    /// The last id of the previous page.
    after: Option<String>,
}

/// One page of users, and the `after` value of the next page when there is one.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPage {
    pub items: Vec<User>,
    pub next: Option<String>,
}

/// Users in a stable order (by id), a page at a time: `?limit=20&after=<last id seen>`.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/api/v1/users",
        tag = "users",
        security(("bearer" = ["admin"])),
        params(Page),
        responses(
            (status = 200, description = "One page of users", body = UserPage),
            (status = 400, description = "The query string is malformed", body = Problem, content_type = "application/problem+json"),
            (status = 422, description = "A query parameter was refused", body = Problem, content_type = "application/problem+json"),
            crate::auth::BearerRefusals,
            crate::auth::RoleRefusal,
        ),
    )
)]
pub(crate) async fn list(
    pool: web::Data<DbPool>,
    page: web::Query<Page>,
) -> Result<HttpResponse, UsersError> {
    let limit: i64 = match &page.limit {
        None => 20,
        Some(limit) => limit
            .parse()
            .ok()
            .filter(|limit| (1..=100).contains(limit))
            .ok_or(UsersError::Invalid {
                field: "limit",
                reason: "must be a whole number from 1 to 100".into(),
            })?,
    };
    let after = page.after.as_deref().unwrap_or_default();
    // One more than asked for: whether there is a next page.
    let mut items = store::list(&pool, after, limit + 1).await?;
    let next = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        items.pop();
        items.last().map(|user| user.id.clone())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(UserPage { items, next }))
}

/// One user's profile.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/api/v1/users/{id}",
        tag = "users",
        security(("bearer" = ["admin"])),
        params(("id" = String, Path, description = "The user's id: the `sub` of their tokens")),
        responses(
            (status = 200, description = "The user's profile", body = User),
            crate::problem::NotFound,
            crate::auth::BearerRefusals,
            crate::auth::RoleRefusal,
        ),
    )
)]
pub(crate) async fn get_one(
    pool: web::Data<DbPool>,
    id: web::Path<String>,
) -> Result<HttpResponse, UsersError> {
    let user = store::find(&pool, &id).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Deletes a user: 204. The row is only marked deleted; a scheduled job may purge it later.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        delete,
        path = "/api/v1/users/{id}",
        tag = "users",
        security(("bearer" = ["admin"])),
        params(("id" = String, Path, description = "The user's id: the `sub` of their tokens")),
        responses(
            (status = 204, description = "The user was deleted"),
            crate::problem::NotFound,
            crate::auth::BearerRefusals,
            crate::auth::RoleRefusal,
        ),
    )
)]
pub(crate) async fn delete_one(
    pool: web::Data<DbPool>,
    id: web::Path<String>,
) -> Result<HttpResponse, UsersError> {
    if store::delete(&pool, &id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(UsersError::NotFound(id.into_inner()))
    }
}

/// The caller's address: the one the provider verified (`email_verified`), never another.
/// An unverified address in the token, or one typed into the request, could be anyone's,
/// and would keep its owner from using it here (addresses are unique).
fn caller_email(
    requested: Option<&str>,
    verified: Option<&str>,
) -> Result<Option<String>, UsersError> {
    match (requested, verified) {
        (None, verified) => verified.map(validate_email).transpose(),
        (Some(requested), Some(verified)) if requested.trim().eq_ignore_ascii_case(verified) => {
            validate_email(requested).map(Some)
        }
        (Some(_), _) => Err(UsersError::Invalid {
            field: "email",
            reason: "must be the address the identity provider verified for you".into(),
        }),
    }
}

fn validate_display_name(name: &str) -> Result<String, UsersError> {
    let name = name.trim();
    let length = name.chars().count();
    if !(1..=100).contains(&length) || name.chars().any(char::is_control) {
        return Err(UsersError::Invalid {
            field: "display_name",
            reason: "must be 1 to 100 characters, without control characters".into(),
        });
    }
    Ok(name.to_owned())
}

fn validate_email(email: &str) -> Result<String, UsersError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                && !domain.starts_with('.') && !domain.ends_with('.'));
    if !valid {
        return Err(UsersError::Invalid {
            field: "email",
            reason: "must be an email address such as name@example.com".into(),
        });
    }
    Ok(email.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(validate_display_name("  Ada  ").unwrap(), "Ada");
        assert!(validate_display_name("").is_err());
        assert!(validate_display_name(&"x".repeat(101)).is_err());
        assert!(validate_display_name("bell\u{7}").is_err());
    }

    #[test]
    fn only_the_verified_address_is_the_callers() {
        let verified = Some("ada@example.com");
        assert_eq!(
            caller_email(None, verified).unwrap().as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(
            caller_email(Some(" ADA@example.com "), verified)
                .unwrap()
                .as_deref(),
            Some("ADA@example.com")
        );
        assert_eq!(caller_email(None, None).unwrap(), None);
        assert!(caller_email(Some("ceo@example.com"), verified).is_err());
        assert!(caller_email(Some("ada@example.com"), None).is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        assert!(validate_email("ada@example.com").is_ok());
        for bad in [
            "ada",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
