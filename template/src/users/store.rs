//! The users table: each query the users API runs, in one function.
//!
//! Every write runs in a transaction; every query binds its values (no SQL is built from
//! input). Times are Unix seconds.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::pool::PoolConnection;
use sqlx::{Row, Transaction};

use super::{User, UsersError};
use crate::db::{self, Db, DbPool};

/// The columns a [`User`] is read from, in every query that returns users.
macro_rules! user_columns {
    () => {
        "id, email, display_name, created_at, updated_at"
    };
}

/// What saving a profile did.
pub enum Saved {
    Created(User),
    Updated(User),
}

/// The live (not deleted) user `id`.
pub async fn find(pool: &DbPool, id: &str) -> Result<User, UsersError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1 AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *connection(pool).await?)
    .await?
    .ok_or_else(|| UsersError::NotFound(id.to_owned()))?;
    Ok(to_user(&row)?)
}

/// Creates or updates user `id`'s profile, in one transaction. A profile an administrator
/// deleted stays deleted: [`UsersError::Deleted`].
pub async fn save_profile(
    pool: &DbPool,
    id: &str,
    email: Option<&str>,
    display_name: &str,
) -> Result<Saved, UsersError> {
    let now = now();
    let mut transaction = begin(pool).await?;
    let existed = sqlx::query("SELECT 1 FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?
        .is_some();
    // An administrator's delete stands: a deleted row is left as it is, and nothing comes
    // back.
    let row = sqlx::query(concat!(
        "INSERT INTO users (id, email, display_name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
         display_name = excluded.display_name, updated_at = excluded.updated_at \
         WHERE users.deleted_at IS NULL RETURNING ",
        user_columns!()
    ))
    .bind(id)
    .bind(email)
    .bind(display_name)
    .bind(now)
    .bind(now)
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or(UsersError::Deleted)?;
    let user = to_user(&row)?;
    transaction.commit().await?;
    Ok(if existed {
        Saved::Updated(user)
    } else {
        Saved::Created(user)
    })
}

/// Up to `limit` live users with an id after `after`, by id.
pub async fn list(pool: &DbPool, after: &str, limit: i64) -> Result<Vec<User>, UsersError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *connection(pool).await?)
    .await?;
    Ok(rows.iter().map(to_user).collect::<Result<_, _>>()?)
}

/// Marks user `id` deleted; the sample job purges it later. `false` when there is no such
/// live user.
pub async fn delete(pool: &DbPool, id: &str) -> Result<bool, UsersError> {
    let now = now();
    let mut transaction = begin(pool).await?;
    let deleted = sqlx::query(
        "UPDATE users SET deleted_at = $1, updated_at = $2 WHERE id = $3 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    transaction.commit().await?;
    Ok(deleted > 0)
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
