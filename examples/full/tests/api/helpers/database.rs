//! A fresh PostgreSQL database for each test, on the server `TEST_DATABASE_URL` names
//! (default `postgres://postgres:postgres@127.0.0.1:5432/postgres`, which
//! `docker compose up -d postgres` provides). `cargo xtask test` in the template
//! repository starts a throwaway cluster and sets it.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// A database that cannot be reached: nothing listens on the discard port on loopback.
pub const UNREACHABLE_URL: &str = "postgres://postgres@127.0.0.1:9/none";

/// A database the test owns. Left behind on the throwaway server.
pub struct TestDatabase {
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let server = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|error| {
                panic!("TEST_DATABASE_URL must name a PostgreSQL server the tests can use: {error}")
            });
        // `name` is ours (a UUID), never outside input.
        connection
            .execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .expect("the test database is created");
        let (base, query) = server.split_once('?').unwrap_or((&server, ""));
        let base = base.rsplit_once('/').map_or(base, |(base, _)| base);
        let url = if query.is_empty() {
            format!("{base}/{name}")
        } else {
            format!("{base}/{name}?{query}")
        };
        Self { url }
    }

    pub fn create_blocking() -> Self {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(Self::create())
    }
}

/// The `DATABASE_URL` for the service binary: a fresh database, as PostgreSQL has no
/// default.
pub fn for_binary() -> Option<String> {
    Some(TestDatabase::create_blocking().url)
}

/// Makes every write to `users` wait until the returned transaction ends: a way to catch a
/// job in the middle of its run.
#[cfg(feature = "scheduler")]
pub async fn block_user_writes(url: &str) -> sqlx::Transaction<'static, crate::service::db::Db> {
    let pool = sqlx::PgPool::connect(url)
        .await
        .expect("the test database answers");
    let mut transaction = pool.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *transaction)
        .await
        .expect("the users table is locked");
    transaction
}
