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
