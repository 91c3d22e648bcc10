//! The job scheduler against a real database: ticks, retries after failures, the sample
//! purge job, and one run per tick across replicas. Rows are written with SQL, so the
//! tests hold without the users API.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::{TestApp, spawn_app_with};
use crate::service::db::Db;
use serde_json::Value;

const EVERY_SECOND: (&str, &str) = ("PURGE_DELETED_USERS_SCHEDULE", "every 1s");

async fn pool(app: &TestApp) -> sqlx::Pool<Db> {
    sqlx::Pool::connect(&app.database.url).await.unwrap()
}

async fn count(pool: &sqlx::Pool<Db>, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Polls `condition` for up to `seconds`.
async fn eventually<F: Future<Output = bool>>(
    seconds: u64,
    mut condition: impl FnMut() -> F,
) -> bool {
    for _ in 0..seconds * 10 {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn the_purge_job_removes_users_deleted_long_enough_ago() {
    let app = spawn_app_with(&[EVERY_SECOND, ("PURGE_DELETED_USERS_AFTER_DAYS", "1")]).await;
    app.wait_until_ready().await;
    let pool = pool(&app).await;
    let day = 86_400;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    // ada was deleted two days ago, cy an hour ago; bob is live.
    for (id, deleted_at) in [
        ("ada", Some(now - 2 * day)),
        ("cy", Some(now - 3600)),
        ("bob", None),
    ] {
        sqlx::query(
            "INSERT INTO users (id, display_name, created_at, updated_at, deleted_at) \
             VALUES ($1, $1, $2, $2, $3)",
        )
        .bind(id)
        .bind(now - 3 * day)
        .bind(deleted_at)
        .execute(&pool)
        .await
        .unwrap();
    }

    let purged = eventually(15, || async {
        count(&pool, "SELECT COUNT(*) FROM users WHERE id = 'ada'").await == 0
    })
    .await;

    assert!(
        purged,
        "the user deleted long enough ago is purged within a few ticks"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM users WHERE id IN ('bob', 'cy')"
        )
        .await,
        2,
        "a live user, and one deleted too recently, stay"
    );
}

#[tokio::test]
async fn a_failed_run_is_rolled_back_and_tried_again_at_the_next_tick() {
    let app = spawn_app_with(&[EVERY_SECOND]).await;
    app.wait_until_ready().await;
    let pool = pool(&app).await;
    // The job's table disappears: every run fails until it is back. (A run in progress
    // finishes first: the rename waits for its lock.)
    sqlx::query("ALTER TABLE users RENAME TO users_away")
        .execute(&pool)
        .await
        .unwrap();
    let before = count(&pool, "SELECT COUNT(*) FROM job_runs").await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM job_runs").await,
        before,
        "failed runs leave no claim behind"
    );
    assert_eq!(
        app.get("/health/liveness").await.status(),
        200,
        "the process goes on"
    );

    sqlx::query("ALTER TABLE users_away RENAME TO users")
        .execute(&pool)
        .await
        .unwrap();
    let recovered = eventually(15, || async {
        count(&pool, "SELECT COUNT(*) FROM job_runs").await > before
    })
    .await;

    assert!(recovered, "the next tick runs the job");
}

/// Two replicas on one database: each tick is run by exactly one of them.
#[cfg(unix)]
#[test]
fn two_replicas_on_one_database_run_each_tick_once() {
    let database = crate::helpers::database::TestDatabase::create_blocking();
    let vars = [
        ("DATABASE_URL", database.url.as_str()),
        ("LOG_JSON_OUTPUT", "true"),
        EVERY_SECOND,
    ];
    let first = crate::helpers::Service::start(&vars);
    let second = crate::helpers::Service::start(&vars);
    std::thread::sleep(Duration::from_millis(4_500));
    let (_, mut lines) = first.terminate();
    lines.extend(second.terminate().1);

    // tick → (runs finished, runs cancelled by shutdown, skips) across both replicas
    let mut ticks: BTreeMap<u64, [u32; 3]> = BTreeMap::new();
    for line in &lines {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        // Events inside the job's span read "[JOB - EVENT] <message>".
        let message = record["msg"].as_str().unwrap_or_default();
        let outcome = [
            "job run finished",
            "job run cancelled by shutdown",
            "job run skipped",
        ]
        .iter()
        .position(|outcome| message.contains(outcome));
        if let Some(outcome) = outcome {
            ticks.entry(record["tick"].as_u64().unwrap()).or_default()[outcome] += 1;
        }
    }
    // Never run twice. A run that SIGTERM cancels rolls back, with the other replica
    // standing aside: at most one such tick for each replica's shutdown.
    assert!(
        ticks
            .values()
            .all(|[finished, cancelled, _]| *finished <= 1 && finished + cancelled >= 1),
        "{ticks:?}"
    );
    let unfinished = ticks.values().filter(|[finished, ..]| *finished == 0);
    assert!(unfinished.count() <= 2, "{ticks:?}");
    assert!(ticks.len() >= 3, "the job ran every second: {ticks:?}");
    assert!(
        ticks.values().any(|[.., skips]| *skips > 0),
        "the other replica stood aside: {ticks:?}"
    );
}

/// SIGTERM while a run is stuck in the database: the run is cancelled, its transaction rolls
/// back, and the process exits without waiting for it.
#[cfg(unix)]
#[test]
fn shutdown_cancels_a_run_in_progress_and_rolls_it_back() {
    let database = crate::helpers::database::TestDatabase::create_blocking();
    let vars = [
        ("DATABASE_URL", database.url.as_str()),
        ("LOG_JSON_OUTPUT", "true"),
        EVERY_SECOND,
    ];
    let mut service = crate::helpers::Service::start(&vars);
    service
        .wait_for_line(|line| line.contains("job run finished"))
        .expect("the job runs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The lock's connection goes back to its pool when dropped, even if an assertion fails.
    let _entered = runtime.enter();
    let lock = runtime.block_on(crate::helpers::database::block_user_writes(&database.url));

    // The next run starts and waits for the lock.
    service
        .wait_for_line(|line| line.contains("job run started"))
        .expect("a run starts");
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (status, lines) = service.terminate();

    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown did not wait for the run"
    );
    let cancelled = lines
        .iter()
        .find(|line| line.contains("job run cancelled by shutdown"))
        .expect("the run is reported cancelled");
    let tick = serde_json::from_str::<Value>(cancelled).unwrap()["tick"]
        .as_i64()
        .unwrap();
    runtime.block_on(async {
        drop(lock);
        let pool = sqlx::Pool::<crate::service::db::Db>::connect(&database.url)
            .await
            .unwrap();
        let claimed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE tick = $1")
            .bind(tick)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(claimed, 0, "the cancelled run's claim was rolled back");
    });
}
