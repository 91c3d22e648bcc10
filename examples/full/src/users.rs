//! The sample domain: user profiles under `/api/v1/users`, identity from the token.
//!
//! Every write runs in a transaction; every query binds its values (no SQL is built from
//! strings). Times are Unix seconds.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};
use sqlx::pool::PoolConnection;
use sqlx::{Row, Transaction};

use crate::auth::{self, AccessToken};
use crate::db::{self, Db, DbPool};
use crate::openapi::{BearerRefusals, BodyRefusals, NotFound, RoleRefusal};
use crate::problem::Problem;

/// Mounts `/api/v1/users`: `/me` for every caller, the rest for the `admin` role.
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/api/v1/users")
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

/// A user's profile as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What `PUT /users/me` accepts. Missing fields come from the token (a verified email only).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

fn to_user(row: &<Db as sqlx::Database>::Row) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            elapsed.as_secs().try_into().unwrap_or(i64::MAX)
        })
}

/// The caller's profile.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's profile", body = User), NotFound, BearerRefusals),
)]
pub(crate) async fn get_me(
    token: AccessToken,
    pool: web::Data<DbPool>,
) -> Result<HttpResponse, UsersError> {
    find(&pool, &token.sub)
        .await
        .map(|user| HttpResponse::Ok().json(user))
}

/// Creates or updates the caller's profile: 201 when created, 200 when updated.
///
/// A profile an administrator deleted stays deleted: 410, until the profile is purged.
#[utoipa::path(
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
        BodyRefusals,
        BearerRefusals,
    ),
)]
// ANCHOR: put_me
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
    // An unverified address in the token could be anyone's: only a verified one is taken.
    let email = match update.email.as_deref().or_else(|| token.verified_email()) {
        Some(email) => Some(validate_email(email)?),
        None => None,
    };

    let now = now();
    let mut transaction = begin(&pool).await?;
    let existing: Option<Option<i64>> =
        sqlx::query_scalar("SELECT deleted_at FROM users WHERE id = $1")
            .bind(&token.sub)
            .fetch_optional(&mut *transaction)
            .await?;
    // An administrator's delete stands: the caller cannot bring the profile back.
    if matches!(existing, Some(Some(_))) {
        return Err(UsersError::Deleted);
    }
    let row = sqlx::query(
        "INSERT INTO users (id, email, display_name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
         display_name = excluded.display_name, updated_at = excluded.updated_at \
         WHERE users.deleted_at IS NULL \
         RETURNING id, email, display_name, created_at, updated_at",
    )
    .bind(&token.sub)
    .bind(&email)
    .bind(&display_name)
    .bind(now)
    .bind(now)
    .fetch_optional(&mut *transaction)
    .await?
    // Deleted since the check above, by an administrator's concurrent request.
    .ok_or(UsersError::Deleted)?;
    let user = to_user(&row)?;
    transaction.commit().await?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(user))
}
// ANCHOR_END: put_me

/// Query parameters of `GET /users`. Read as text so a bad value gets a 422 naming it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many users to return, from 1 to 100 (20 when absent).
    #[param(value_type = Option<u8>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The last id of the previous page.
    after: Option<String>,
}

/// One page of users, and the `after` value of the next page when there is one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    pub next: Option<String>,
}

/// Users in a stable order (by id), a page at a time: `?limit=20&after=<last id seen>`.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = ["admin"])),
    params(Page),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 400, description = "The query string is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter was refused", body = Problem, content_type = "application/problem+json"),
        BearerRefusals,
        RoleRefusal,
    ),
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
    let after = page.after.clone().unwrap_or_default();
    let rows = sqlx::query(
        "SELECT id, email, display_name, created_at, updated_at FROM users \
         WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(&after)
    .bind(limit + 1)
    .fetch_all(&mut *connection(&pool).await?)
    .await?;
    let mut items = rows.iter().map(to_user).collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        items.pop();
        items.last().map(|user| user.id.clone())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(UserPage { items, next }))
}

/// One user's profile.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The user's id: the `sub` of their tokens")),
    responses(
        (status = 200, description = "The user's profile", body = User),
        NotFound,
        BearerRefusals,
        RoleRefusal,
    ),
)]
pub(crate) async fn get_one(
    pool: web::Data<DbPool>,
    id: web::Path<String>,
) -> Result<HttpResponse, UsersError> {
    find(&pool, &id)
        .await
        .map(|user| HttpResponse::Ok().json(user))
}

/// Deletes a user: 204. The row is only marked deleted; a scheduled job may purge it later.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The user's id: the `sub` of their tokens")),
    responses(
        (status = 204, description = "The user was deleted"),
        NotFound,
        BearerRefusals,
        RoleRefusal,
    ),
)]
pub(crate) async fn delete_one(
    pool: web::Data<DbPool>,
    id: web::Path<String>,
) -> Result<HttpResponse, UsersError> {
    let now = now();
    let mut transaction = begin(&pool).await?;
    let deleted = sqlx::query(
        "UPDATE users SET deleted_at = $1, updated_at = $2 WHERE id = $3 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(now)
    .bind(id.as_str())
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Err(UsersError::NotFound(id.into_inner()));
    }
    transaction.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn find(pool: &DbPool, id: &str) -> Result<User, UsersError> {
    let row = sqlx::query(
        "SELECT id, email, display_name, created_at, updated_at FROM users \
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *connection(pool).await?)
    .await?
    .ok_or_else(|| UsersError::NotFound(id.to_owned()))?;
    Ok(to_user(&row)?)
}

/// A connection, or 503: a database that cannot be reached is not the caller's fault.
async fn connection(pool: &DbPool) -> Result<PoolConnection<Db>, UsersError> {
    pool.acquire().await.map_err(unavailable)
}

/// A write transaction, or 503 like [`connection`].
async fn begin(pool: &DbPool) -> Result<Transaction<'static, Db>, UsersError> {
    db::begin_write(pool).await.map_err(unavailable)
}

fn unavailable(error: sqlx::Error) -> UsersError {
    tracing::warn!(%error, "no database connection");
    UsersError::Unavailable
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
