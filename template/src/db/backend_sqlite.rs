//! SQLite: the database this service was generated for.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

pub type Db = sqlx::Sqlite;

/// Parses `DATABASE_URL`; the file is created if missing, in WAL mode so readers never
/// wait for the writer.
pub fn connect_options(url: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5)))
}

/// A local file: there is no network to protect.
pub fn verifies_server(_options: &SqliteConnectOptions) -> bool {
    true
}

/// A URL the settings accept even in production, for the settings' unit tests.
#[cfg(test)]
pub const TEST_URL: &str = "sqlite::memory:";

/// Starts a transaction that will write. IMMEDIATE takes the write lock up front: a deferred
/// transaction that reads, then writes, fails with "database is locked" when another writer
/// got there in between, where this one waits its turn (up to the busy timeout).
pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The default `DATABASE_URL`: a file next to the working directory.
pub const DEFAULT_URL: Option<&str> = Some("sqlite:service.db");

/// Takes the job's lock for this transaction. SQLite has a single writer, so the
/// transaction itself is the lock.
pub async fn try_lock_job(
    _transaction: &mut sqlx::Transaction<'_, Db>,
    _job: &str,
) -> Result<bool, sqlx::Error> {
    Ok(true)
}
