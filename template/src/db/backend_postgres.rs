//! PostgreSQL: the database this service was generated for.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

pub type Db = sqlx::Postgres;

/// Parses `DATABASE_URL` (`postgres://user:password@host:5432/database?sslmode=...`).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    PgConnectOptions::from_str(url)
}

/// Starts a transaction that will write.
pub const BEGIN_WRITE: &str = "BEGIN";

/// No default: `DATABASE_URL` must name the server.
pub const DEFAULT_URL: Option<&str> = None;

/// Takes the job's advisory lock for this transaction, if no other replica holds it.
/// Released when the transaction ends.
pub async fn try_lock_job(
    transaction: &mut sqlx::Transaction<'_, Db>,
    job: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
        .bind(job)
        .fetch_one(&mut **transaction)
        .await
}
