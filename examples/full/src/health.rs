//! Liveness and readiness probes.
//!
//! Liveness answers as long as the process can serve HTTP. Readiness runs every registered
//! dependency check and answers 503 naming the failing ones; it also answers 503 from the
//! moment graceful shutdown begins, so load balancers stop sending new requests while
//! in-flight ones finish. The probes are public: they say `up` or `down` and nothing more.
//! Why a check is down (a provider URL, a database error) goes to the log when it changes.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

/// How long one dependency check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The result of one check: `Err` carries the reason, for the log only.
pub type CheckResult = Result<(), String>;

/// A dependency the service needs in order to serve traffic.
pub trait HealthCheck: Send + Sync + 'static {
    /// The key under which the check is reported.
    fn name(&self) -> &'static str;
    /// Probes the dependency.
    fn check(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>>;
}

/// Shared readiness state: the registered checks and whether shutdown has begun.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    shutting_down: AtomicBool,
    checks: RwLock<Vec<Arc<dyn HealthCheck>>>,
    /// Each check's last reason for being down (`None` when up), to log changes only.
    last: Mutex<HashMap<&'static str, Option<String>>>,
}

impl Readiness {
    /// Adds a dependency check to the readiness probe.
    pub fn register(&self, check: impl HealthCheck) {
        self.inner
            .checks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::new(check));
    }

    /// From now on readiness answers 503.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    async fn report(&self) -> Report {
        let mut checks = BTreeMap::new();
        if !self.is_shutting_down() {
            let registered = self
                .inner
                .checks
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            let results = futures_util::future::join_all(
                registered
                    .iter()
                    .map(|check| async move { (check.name(), checked(check.as_ref()).await) }),
            )
            .await;
            self.log_changes(&results);
            checks = results
                .into_iter()
                .map(|(name, result)| (name, Check::from(&result)))
                .collect();
        }
        // Checked after the probes too: an answer given once shutdown has begun is 503.
        if self.is_shutting_down() {
            let down = Check {
                status: Status::Down,
            };
            checks.insert("shutdown", down);
        }
        Report::from_checks(checks)
    }

    /// Logs a check that went down (with its reason) or came back up, once per change.
    fn log_changes(&self, results: &[(&'static str, CheckResult)]) {
        let mut last = self
            .inner
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, result) in results {
            let reason = result.as_ref().err();
            let previous = last.get(name);
            if previous.map(Option::as_ref) == Some(reason) {
                continue;
            }
            match reason {
                Some(reason) => tracing::warn!(check = name, %reason, "readiness check down"),
                // A check seen for the first time and up is not news.
                None if previous.is_some() => tracing::info!(check = name, "readiness check up"),
                None => {}
            }
            last.insert(name, reason.cloned());
        }
    }
}

/// Runs `check`, failing it when it takes longer than [`CHECK_TIMEOUT`].
async fn checked(check: &(impl HealthCheck + ?Sized)) -> CheckResult {
    match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

/// Remembers a check's success for a while, so frequent probes (several load balancers,
/// a kubelet) do not each reach the dependency: `Cached::new(check, ttl)`. Concurrent probes
/// wait for the one in flight. A failure is not remembered: the next probe checks again, so
/// the service is ready as soon as the dependency is (at startup, once migrations are done).
pub struct Cached<C> {
    check: C,
    ttl: Duration,
    last: tokio::sync::Mutex<Option<(Instant, CheckResult)>>,
}

impl<C: HealthCheck> Cached<C> {
    pub fn new(check: C, ttl: Duration) -> Self {
        Self {
            check,
            ttl,
            last: tokio::sync::Mutex::new(None),
        }
    }
}

impl<C: HealthCheck> HealthCheck for Cached<C> {
    fn name(&self) -> &'static str {
        self.check.name()
    }

    fn check(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        Box::pin(async move {
            let mut last = self.last.lock().await;
            if let Some((at, result)) = last.as_ref()
                && at.elapsed() < self.ttl
            {
                return result.clone();
            }
            // Bounded here too, so a check that hangs fails like any other.
            let result = checked(&self.check).await;
            *last = result.is_ok().then(|| (Instant::now(), result.clone()));
            result
        })
    }
}

/// The readiness report: `up` when every check passes.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Report {
    status: Status,
    checks: BTreeMap<&'static str, Check>,
}

impl Report {
    fn from_checks(checks: BTreeMap<&'static str, Check>) -> Self {
        let all_up = checks.values().all(|check| check.status == Status::Up);
        let status = if all_up { Status::Up } else { Status::Down };
        Self { status, checks }
    }
}

/// One dependency check: `up` or `down`, and no more (the reason is in the log).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Check {
    status: Status,
}

impl From<&CheckResult> for Check {
    fn from(result: &CheckResult) -> Self {
        let status = match result {
            Ok(()) => Status::Up,
            Err(_) => Status::Down,
        };
        Self { status }
    }
}

#[derive(Serialize, PartialEq, Eq, Clone, Copy)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Up,
    Down,
}

/// The probes in the API description.
#[cfg(feature = "openapi")]
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(liveness, readiness),
    tags((name = "health", description = "Liveness and readiness probes"))
)]
pub struct ApiDoc;

/// Mounts `/health/liveness` and `/health/readiness`.
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/health")
            .route("/liveness", web::get().to(liveness))
            .route("/readiness", web::get().to(readiness)),
    );
}

/// Answers as long as the process can serve HTTP.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/health/liveness",
        tag = "health",
        responses((status = 200, description = "The process is alive", body = Liveness)),
    )
)]
pub(crate) async fn liveness() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "alive" })
}

/// The liveness answer: `{"status": "alive"}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Liveness {
    status: &'static str,
}

/// Runs every registered dependency check; 503 while one fails or shutdown has begun.
#[cfg_attr(
    feature = "openapi",
    utoipa::path(
        get,
        path = "/health/readiness",
        tag = "health",
        responses(
            (status = 200, description = "Every dependency is up", body = Report),
            (status = 503, description = "A dependency is down, or the service is shutting down", body = Report),
        ),
    )
)]
pub(crate) async fn readiness(readiness: web::Data<Readiness>) -> HttpResponse {
    let report = readiness.report().await;
    let status = match report.status {
        Status::Up => StatusCode::OK,
        Status::Down => StatusCode::SERVICE_UNAVAILABLE,
    };
    HttpResponse::build(status).json(report)
}
