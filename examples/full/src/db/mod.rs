//! The database: a connection pool, migrations embedded in the binary, a readiness check.
//!
//! The pool connects lazily, so startup never waits for the database. A background task
//! applies the migrations, retrying with backoff until the database answers; until then
//! readiness reports the `database` check as failing and queries answer 503. No crash loop.

mod backend;
mod migrations;

use std::borrow::Cow;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolOptions;
use sqlx::{Pool, SqlSafeStr};

#[cfg(test)]
pub(crate) use backend::TEST_URL;
pub use backend::{Db, try_lock_job};

use crate::health::{Cached, CheckResult, HealthCheck, Readiness};
use crate::settings::{Environment, SettingsError, Values};

/// A pool of connections to the service's database.
pub type DbPool = Pool<Db>;

/// Starts a transaction for writing, as the database needs it (see `BEGIN_WRITE`).
pub async fn begin_write(pool: &DbPool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with(backend::BEGIN_WRITE).await
}

/// `DATABASE_*` settings.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Never printed: it may hold a password.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long a query waits for a free connection before answering 503.
    pub acquire_timeout: Duration,
    /// Apply pending migrations at startup.
    pub migrate: bool,
    /// `DATABASE_ALLOW_INSECURE`: production may connect without verifying the server.
    pub allow_insecure: bool,
}

impl DatabaseSettings {
    pub(crate) fn from_values(
        values: &Values<'_>,
        environment: Environment,
    ) -> Result<Self, SettingsError> {
        let url = match (values.get("DATABASE_URL")?, backend::DEFAULT_URL) {
            (Some(url), _) => url,
            (None, Some(default)) => default.to_owned(),
            (None, None) => {
                return Err(SettingsError::Invalid {
                    variable: "DATABASE_URL",
                    value: String::new(),
                    expected: "the database's URL, e.g. postgres://user:password@host:5432/name",
                });
            }
        };
        let Ok(options) = backend::connect_options(&url) else {
            return Err(SettingsError::Invalid {
                variable: "DATABASE_URL",
                value: redact_password(&url),
                expected: "a database URL this service can connect to",
            });
        };
        let allow_insecure = values.boolean("DATABASE_ALLOW_INSECURE", "false")?;
        if environment == Environment::Production
            && !allow_insecure
            && !backend::verifies_server(&options)
        {
            return Err(SettingsError::Invalid {
                variable: "DATABASE_URL",
                value: redact_password(&url),
                expected: "sslmode=verify-full (or verify-ca) in production, so the connection is encrypted and the server is who it says; DATABASE_ALLOW_INSECURE=true allows others on a network that is otherwise protected",
            });
        }
        Ok(Self {
            url: SecretString::from(url),
            max_connections: values.with(
                "DATABASE_MAX_CONNECTIONS",
                "a whole number of connections, at least 1",
                "10",
                |value| value.parse().ok().filter(|connections| *connections >= 1),
            )?,
            acquire_timeout: values.seconds("DATABASE_ACQUIRE_TIMEOUT", "3")?,
            migrate: values.boolean("DATABASE_MIGRATE", "true")?,
            allow_insecure,
        })
    }
}

/// `DATABASE_URL` for an error message, without what may be a password: the user
/// information's (all before the last `@`, since an unencoded password may hold `/`, `?` or
/// `@`; only the user name before it is shown) and the value of every `key=value` whose key
/// names a password or is percent-encoded (sqlx reads `password` from the query too), with
/// or without a `?` before it. Text that is not a URL and mentions a password (a libpq
/// `key=value` string) is not shown at all. Wrong guesses hide too much, never a password.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.to_ascii_lowercase().contains("pass") {
            "[not shown: it may hold a password]".to_owned()
        } else {
            url.to_owned()
        };
    };
    let mut redacted = format!("{scheme}://");
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, rest)) => {
            let user_end = userinfo
                .find([':', '/', '?', '&'])
                .unwrap_or(userinfo.len());
            redacted.push_str(&userinfo[..user_end]);
            redacted.push_str(":[redacted]@");
            rest
        }
        None => rest,
    };
    for piece in rest.split_inclusive(['?', '&']) {
        let (pair, separator) = match piece.strip_suffix(['?', '&']) {
            Some(pair) => (pair, &piece[pair.len()..]),
            None => (piece, ""),
        };
        match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("pass") || key.contains('%') => {
                redacted.push_str(key);
                redacted.push_str("=[redacted]");
            }
            _ => redacted.push_str(pair),
        }
        redacted.push_str(separator);
    }
    redacted
}

/// The running database layer; stops its background task when dropped.
pub struct Database {
    pool: DbPool,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    ready: AtomicBool,
    last_error: RwLock<Option<String>>,
}

impl Database {
    /// Creates the pool (without connecting), starts migrating in the background and
    /// registers the `database` readiness check.
    pub fn start(settings: &DatabaseSettings, readiness: &Readiness) -> io::Result<Self> {
        if settings.allow_insecure {
            tracing::warn!(
                "DATABASE_ALLOW_INSECURE=true: the database connection may be unencrypted, or its server unchecked"
            );
        }
        let options = backend::connect_options(settings.url.expose_secret())
            .map_err(|e| io::Error::other(format!("DATABASE_URL: {e}")))?;
        let pool = PoolOptions::<Db>::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        let state = Arc::new(State {
            ready: AtomicBool::new(false),
            last_error: RwLock::new(None),
        });
        // Probes come often and from several places; one query a second answers them all.
        readiness.register(Cached::new(
            DatabaseCheck {
                pool: pool.clone(),
                state: Arc::clone(&state),
            },
            Duration::from_secs(1),
        ));
        let task = tokio::spawn(prepare(pool.clone(), settings.migrate, state));
        Ok(Self { pool, task })
    }

    pub fn pool(&self) -> DbPool {
        self.pool.clone()
    }

    /// Sets the pool gauges (connections idle, in use, and the maximum) when called; the
    /// metrics endpoint calls it before each scrape.
    pub fn pool_gauges(&self) -> impl Fn() + Send + Sync + 'static {
        let pool = self.pool.clone();
        move || {
            let open = pool.size() as f64;
            let idle = pool.num_idle() as f64;
            let max = f64::from(pool.options().get_max_connections());
            metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
            metrics::gauge!("db_pool_connections", "state" => "in_use").set(open - idle);
            metrics::gauge!("db_pool_max_connections").set(max);
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects and migrates, with backoff, until it succeeds once.
async fn prepare(pool: DbPool, migrate: bool, state: Arc<State>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let attempt = async {
            if migrate {
                migrator().run(&pool).await.map_err(|e| e.to_string())
            } else {
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        };
        match attempt.await {
            Ok(()) => {
                tracing::info!(migrations = migrate, "the database is ready");
                state.ready.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "the database is not ready");
                *state
                    .last_error
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn migrator() -> Migrator {
    Migrator::with_migrations(
        migrations::MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Readiness: the migrations have run and the database answers now.
struct DatabaseCheck {
    pool: DbPool,
    state: Arc<State>,
}

impl HealthCheck for DatabaseCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        Box::pin(async move {
            if !self.state.ready.load(Ordering::SeqCst) {
                let error = self
                    .state
                    .last_error
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone();
                return Err(error.unwrap_or_else(|| "connecting".into()));
            }
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db:5432/app?sslmode=require"),
            "postgres://app:[redacted]@db:5432/app?sslmode=require"
        );
        assert_eq!(redact_password("sqlite:service.db"), "sqlite:service.db");
        // An unencoded password holding `/`, `?` or `@`, which also makes the URL invalid.
        assert_eq!(
            redact_password("postgres://app:a/b?c@d@db/app"),
            "postgres://app:[redacted]@db/app"
        );
        // sqlx reads `password` from the query too (libpq `sslpassword` as well).
        assert_eq!(
            redact_password(
                "postgres://app@db/app?sslmode=require&password=s3cret&sslpassword=k3y"
            ),
            "postgres://app:[redacted]@db/app?sslmode=require&password=[redacted]&sslpassword=[redacted]"
        );
        // A libpq key=value string is not a URL: not shown. Nor is a password when the
        // query holds an `@` (Azure's user@server), or names it percent-encoded.
        for url in [
            "host=db user=app password=s3cret",
            "postgres://db/app?user=app@srv&password=s3cret",
            "postgres://db/app?password=s3cret&user=app@srv",
            "postgres://app@db/app?pass%77ord=s3cret",
        ] {
            let shown = redact_password(url);
            assert!(!shown.contains("s3cret"), "{url}: {shown}");
        }
    }
}
