//! Background jobs on a schedule: a cron expression or a fixed interval.
//!
//! Each job runs in its own task, one run after another, so a job never overlaps itself.
//! Every run has its own span (job, tick, duration, outcome). A run is claimed per tick in
//! the `job_runs` table, inside a transaction that also holds the job's lock (a PostgreSQL
//! advisory lock), so however many replicas run the service, one of them runs each tick.
//! A failed run is logged and the job waits for its next tick; the process goes on.
//! Shutdown cancels a run in progress: its transaction rolls back.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::Transaction;
use tokio::sync::watch;
use tracing::Instrument;

use crate::db::{self, Db, DbPool, try_lock_job};
use crate::settings::{SettingsError, Values};

/// The future a job's run returns: a short summary for the log, or the error.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<String, sqlx::Error>> + Send + 'a>>;

/// A unit of background work.
pub trait Job: Send + Sync + 'static {
    /// A stable name: the key of its lock and of its runs.
    fn name(&self) -> &'static str;
    /// One run's work, inside `transaction`, which commits if it succeeds.
    fn run<'a>(&'a self, transaction: &'a mut Transaction<'static, Db>) -> RunFuture<'a>;
}

/// When a job runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, on multiples of the interval since the Unix epoch, so replicas agree
    /// on the ticks.
    Every(Duration),
    /// A cron expression with seconds, in UTC: `0 0 3 * * *` is 03:00 every day.
    Cron(Box<cron::Schedule>),
}

impl FromStr for Schedule {
    type Err = ();

    /// `every 30s`, `every 5m`, `every 1h`, or a cron expression.
    fn from_str(text: &str) -> Result<Self, ()> {
        if let Some(interval) = text.trim().strip_prefix("every ") {
            let interval = interval.trim();
            let split = interval.find(|c: char| !c.is_ascii_digit()).ok_or(())?;
            let (count, unit) = interval.split_at(split);
            let count: u64 = count.parse().map_err(|_| ())?;
            let seconds = match unit {
                "s" => count,
                "m" => count * 60,
                "h" => count * 3600,
                _ => return Err(()),
            };
            return (seconds > 0)
                .then(|| Self::Every(Duration::from_secs(seconds)))
                .ok_or(());
        }
        cron::Schedule::from_str(text)
            .map(|schedule| Self::Cron(Box::new(schedule)))
            .map_err(|_| ())
    }
}

impl Schedule {
    /// The first tick strictly after `now`, in Unix seconds.
    fn next_tick(&self, now: u64) -> Option<u64> {
        match self {
            Self::Every(interval) => {
                let step = interval.as_secs().max(1);
                Some((now / step + 1) * step)
            }
            Self::Cron(schedule) => {
                let now = chrono::DateTime::from_timestamp(i64::try_from(now).ok()?, 0)?;
                let next = schedule.after(&now).next()?;
                u64::try_from(next.timestamp()).ok()
            }
        }
    }
}

/// `SCHEDULER_*` and the sample job's settings.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub enabled: bool,
    pub purge_schedule: Schedule,
    /// Deleted users are purged once deleted this long ago.
    pub purge_after: Duration,
}

impl SchedulerSettings {
    pub(crate) fn from_values(values: &Values<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            enabled: values.boolean("SCHEDULER_ENABLED", "true")?,
            purge_schedule: values.parse(
                "PURGE_DELETED_USERS_SCHEDULE",
                "`every <n>s|m|h` or a cron expression with seconds, e.g. `0 0 3 * * *`",
                "0 0 3 * * *",
            )?,
            purge_after: values
                .parse::<u64>(
                    "PURGE_DELETED_USERS_AFTER_DAYS",
                    "a whole number of days",
                    "30",
                )
                .map(|days| Duration::from_secs(days * 86_400))?,
        })
    }
}

/// Starts every job of the service; they stop when `shutdown` turns true.
pub fn start(settings: &SchedulerSettings, pool: DbPool, shutdown: watch::Receiver<bool>) {
    if !settings.enabled {
        tracing::info!("the scheduler is disabled");
        return;
    }
    let jobs: Vec<(Arc<dyn Job>, Schedule)> = vec![(
        Arc::new(PurgeDeletedUsers {
            after: settings.purge_after,
        }),
        settings.purge_schedule.clone(),
    )];
    for (job, schedule) in jobs {
        tokio::spawn(run_forever(job, schedule, pool.clone(), shutdown.clone()));
    }
}

/// One job's loop: wait for the tick, run, repeat; never two runs at once.
async fn run_forever(
    job: Arc<dyn Job>,
    schedule: Schedule,
    pool: DbPool,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let now = unix_now();
        let Some(tick) = schedule.next_tick(now) else {
            tracing::warn!(job = job.name(), "the schedule has no further ticks");
            return;
        };
        let wait = Duration::from_secs(tick.saturating_sub(now))
            .saturating_sub(Duration::from_nanos(u64::from(subsec_nanos())));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let span = tracing::info_span!(
            "job",
            job = job.name(),
            tick,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty
        );
        span.in_scope(|| tracing::info!("job run started"));
        let started = Instant::now();
        let outcome = tokio::select! {
            result = run_once(job.as_ref(), tick, &pool).instrument(span.clone()) => result,
            _ = shutdown.wait_for(|stop| *stop) => Err(RunError::Cancelled),
        };
        let _entered = span.enter();
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        span.record("duration_ms", elapsed);
        match outcome {
            Ok(summary) => {
                span.record("outcome", summary.as_str());
                tracing::info!("job run finished");
            }
            Err(RunError::Skipped(reason)) => {
                span.record("outcome", "skipped");
                tracing::info!(reason, "job run skipped");
            }
            Err(RunError::Cancelled) => {
                span.record("outcome", "cancelled");
                tracing::info!("job run cancelled by shutdown; its transaction rolled back");
                return;
            }
            Err(RunError::Failed(error)) => {
                span.record("outcome", "failed");
                tracing::error!(%error, "job run failed; it runs again at the next tick");
            }
        }
    }
}

enum RunError {
    Skipped(&'static str),
    Cancelled,
    Failed(sqlx::Error),
}

/// Claims the tick and runs the job in one transaction.
async fn run_once(job: &dyn Job, tick: u64, pool: &DbPool) -> Result<String, RunError> {
    let mut transaction = db::begin_write(pool).await.map_err(RunError::Failed)?;
    if !try_lock_job(&mut transaction, job.name())
        .await
        .map_err(RunError::Failed)?
    {
        return Err(RunError::Skipped("another replica is running it"));
    }
    let claimed = sqlx::query(
        "INSERT INTO job_runs (job, tick, started_at) VALUES ($1, $2, $3) \
         ON CONFLICT (job, tick) DO NOTHING",
    )
    .bind(job.name())
    .bind(i64::try_from(tick).unwrap_or(i64::MAX))
    .bind(i64::try_from(unix_now()).unwrap_or(i64::MAX))
    .execute(&mut *transaction)
    .await
    .map_err(RunError::Failed)?
    .rows_affected();
    if claimed == 0 {
        return Err(RunError::Skipped("another replica ran this tick"));
    }
    let summary = job.run(&mut transaction).await.map_err(RunError::Failed)?;
    transaction.commit().await.map_err(RunError::Failed)?;
    Ok(summary)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn subsec_nanos() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos())
}

/// The sample job: removes users deleted more than `after` ago.
pub struct PurgeDeletedUsers {
    pub after: Duration,
}

impl Job for PurgeDeletedUsers {
    fn name(&self) -> &'static str {
        "purge-deleted-users"
    }

    fn run<'a>(&'a self, transaction: &'a mut Transaction<'static, Db>) -> RunFuture<'a> {
        Box::pin(async move {
            let cutoff = unix_now().saturating_sub(self.after.as_secs());
            let purged =
                sqlx::query("DELETE FROM users WHERE deleted_at IS NOT NULL AND deleted_at <= $1")
                    .bind(i64::try_from(cutoff).unwrap_or(i64::MAX))
                    .execute(&mut **transaction)
                    .await?
                    .rows_affected();
            Ok(format!("purged {purged} users"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Schedule;

    #[test]
    fn intervals_tick_on_multiples_so_replicas_agree() {
        let schedule: Schedule = "every 5m".parse().unwrap();
        assert_eq!(schedule.next_tick(1_000), Some(1_200));
        assert_eq!(schedule.next_tick(1_200), Some(1_500));
    }

    #[test]
    fn cron_expressions_are_evaluated_in_utc() {
        let schedule: Schedule = "0 0 3 * * *".parse().unwrap();
        // 2026-01-01T00:00:00Z → 03:00 the same day.
        assert_eq!(schedule.next_tick(1_767_225_600), Some(1_767_236_400));
    }

    #[test]
    fn malformed_schedules_are_refused() {
        for bad in ["every", "every 0s", "every 5d", "daily", "61 * * * * *"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad}");
        }
    }
}
