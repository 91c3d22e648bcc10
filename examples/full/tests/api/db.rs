//! The database layer, whatever is built on it: readiness, and the migrations.

use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn an_unreachable_database_is_reported_by_readiness() {
    let app = spawn_app_with(&[
        ("DATABASE_URL", crate::helpers::database::UNREACHABLE_URL),
        ("DATABASE_ACQUIRE_TIMEOUT", "1"),
    ])
    .await;

    let readiness = app.get("/health/readiness").await;

    assert_eq!(readiness.status(), 503);
    let body: Value = readiness.json().await.unwrap();
    // Down, and nothing more: the database's error is for the log.
    assert_eq!(
        body["checks"]["database"],
        json!({ "status": "down" }),
        "{body}"
    );
}

#[tokio::test]
async fn every_file_in_the_migrations_folder_is_applied_in_order() {
    let app = spawn_app().await;
    app.wait_until_ready().await;

    // What the folder holds now: `build.rs` embeds each file without a list to update.
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut on_disk: Vec<i64> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| name.split('_').next().unwrap().parse().unwrap())
        .collect();
    on_disk.sort_unstable();
    let pool: sqlx::Pool<crate::service::db::Db> =
        sqlx::Pool::connect(&app.database.url).await.unwrap();
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();

    assert!(!on_disk.is_empty());
    assert_eq!(applied, on_disk);
}
