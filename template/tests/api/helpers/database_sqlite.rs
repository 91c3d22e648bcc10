//! A fresh SQLite database file for each test.

/// A database that cannot be opened: a file cannot live under `/dev/null`.
pub const UNREACHABLE_URL: &str = "sqlite:/dev/null/unreachable.db";

/// A database the test owns; removed when dropped.
pub struct TestDatabase {
    pub url: String,
    _dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn create() -> Self {
        Self::create_blocking()
    }

    pub fn create_blocking() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite:{}", dir.path().join("test.db").display());
        Self { url, _dir: dir }
    }
}

/// The `DATABASE_URL` for the service binary, when it needs one: none, as it opens its
/// default file (`service.db`) in the working directory each test gives it.
pub fn for_binary() -> Option<String> {
    None
}

/// Makes every write wait until the returned transaction ends (SQLite has one writer): a
/// way to catch a job in the middle of its run.
#[cfg(feature = "scheduler")]
pub async fn block_user_writes(url: &str) -> sqlx::Transaction<'static, crate::service::db::Db> {
    let pool = sqlx::SqlitePool::connect(url)
        .await
        .expect("the test database opens");
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .expect("the write lock is taken")
}
