//! Liveness and readiness probes.
//!
//! Liveness answers as long as the process can serve HTTP. Readiness runs every registered
//! dependency check and answers 503 naming the failing ones; it also answers 503 from the
//! moment graceful shutdown begins, so load balancers stop sending new requests while
//! in-flight ones finish.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

/// How long one dependency check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

// ANCHOR: health_check
/// The result of one check: `Err` carries a short reason, safe to show to callers.
pub type CheckResult = Result<(), String>;

/// A dependency the service needs in order to serve traffic.
pub trait HealthCheck: Send + Sync + 'static {
    /// The key under which the check is reported.
    fn name(&self) -> &'static str;
    /// Probes the dependency.
    fn check(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>>;
}
// ANCHOR_END: health_check

/// Shared readiness state: the registered checks and whether shutdown has begun.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    shutting_down: AtomicBool,
    checks: RwLock<Vec<Arc<dyn HealthCheck>>>,
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
            checks = futures_util::future::join_all(registered.iter().map(|check| async move {
                let result = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                    Ok(Ok(())) => Check::up(),
                    Ok(Err(reason)) => Check::down(reason),
                    Err(_) => Check::down(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                (check.name(), result)
            }))
            .await
            .into_iter()
            .collect();
        }
        // Checked after the probes too: an answer given once shutdown has begun is 503.
        if self.is_shutting_down() {
            checks.insert(
                "shutdown",
                Check::down("graceful shutdown in progress".into()),
            );
        }
        Report::from_checks(checks)
    }
}

/// The readiness report: `up` when every check passes.
#[derive(Serialize{% if openapi %}, utoipa::ToSchema{% endif %})]
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

/// One dependency check; `error` says why it is down.
#[derive(Serialize{% if openapi %}, utoipa::ToSchema{% endif %})]
pub(crate) struct Check {
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Check {
    fn up() -> Self {
        Self {
            status: Status::Up,
            error: None,
        }
    }

    fn down(reason: String) -> Self {
        Self {
            status: Status::Down,
            error: Some(reason),
        }
    }
}

#[derive(Serialize, PartialEq, Eq, Clone, Copy{% if openapi %}, utoipa::ToSchema{% endif %})]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Up,
    Down,
}

/// Mounts `/health/liveness` and `/health/readiness`.
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/health")
            .route("/liveness", web::get().to(liveness))
            .route("/readiness", web::get().to(readiness)),
    );
}

/// Answers as long as the process can serve HTTP.
{%- if openapi %}
#[utoipa::path(
    get,
    path = "/health/liveness",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = Liveness)),
)]
{%- endif %}
pub(crate) async fn liveness() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "alive" })
}

/// The liveness answer: `{"status": "alive"}`.
#[derive(Serialize{% if openapi %}, utoipa::ToSchema{% endif %})]
pub(crate) struct Liveness {
    status: &'static str,
}

/// Runs every registered dependency check; 503 while one fails or shutdown has begun.
{%- if openapi %}
#[utoipa::path(
    get,
    path = "/health/readiness",
    tag = "health",
    responses(
        (status = 200, description = "Every dependency is up", body = Report),
        (status = 503, description = "A dependency is down, or the service is shutting down", body = Report),
    ),
)]
{%- endif %}
pub(crate) async fn readiness(readiness: web::Data<Readiness>) -> HttpResponse {
    let report = readiness.report().await;
    let status = match report.status {
        Status::Up => StatusCode::OK,
        Status::Down => StatusCode::SERVICE_UNAVAILABLE,
    };
    HttpResponse::build(status).json(report)
}
