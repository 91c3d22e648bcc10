//! Prometheus metrics at `/metrics`, or on a port of their own when `METRICS_PORT` is set.
//!
//! Every request is counted and timed by method, route pattern and status. The auth code
//! counts refusals by reason and JWKS fetches by trigger and outcome; the database reports
//! its pool when scraped. They record through the `metrics` facade, which this module
//! connects to a Prometheus exporter.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{App, Error, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use crate::settings::{SettingsError, Values};

/// How long each request took, from the first middleware to the response head.
const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Bucket bounds in seconds: a loopback answer takes well under a millisecond, a slow
/// dependency seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Histogram samples are folded in this often, so memory stays flat between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// `METRICS_PORT`: where Prometheus scrapes.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// A port of their own on `HOST`, or `None` for `/metrics` on `PORT`.
    pub port: Option<u16>,
}

impl MetricsSettings {
    pub(crate) fn from_values(values: &Values<'_>) -> Result<Self, SettingsError> {
        Ok(Self {
            port: values.optional_with(
                "METRICS_PORT",
                "a port number from 0 to 65535, or empty to serve /metrics on PORT",
                |value| value.parse().ok(),
            )?,
        })
    }
}

/// A source of gauges read at scrape time, such as the database pool.
type Collector = Arc<dyn Fn() + Send + Sync>;

/// The exporter's handle and the collectors to run before each scrape.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// Shared by every clone: the own-port server's and each worker's.
    collectors: Arc<RwLock<Vec<Collector>>>,
    /// `/metrics` is served on a port of its own, not on the API's listener.
    on_own_port: bool,
}

impl Metrics {
    /// Installs the exporter and, with `METRICS_PORT`, serves `/metrics` on that port of
    /// `host` until `shutdown` turns true; otherwise [`Metrics::routes`] mounts it on the
    /// API's listener.
    pub fn start(
        settings: &MetricsSettings,
        host: IpAddr,
        shutdown: &watch::Sender<bool>,
    ) -> io::Result<Self> {
        let mut metrics = Self::install();
        if let Some(port) = settings.port {
            let port = metrics.serve_on(host, port, shutdown.subscribe())?;
            tracing::info!(port, "serving /metrics on its own port");
            metrics.on_own_port = true;
        }
        Ok(metrics)
    }

    /// Connects the `metrics` facade to the Prometheus exporter. The recorder is global:
    /// every application in the process (the tests start many) shares it.
    fn install() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(REQUEST_DURATION.to_owned()),
                    &DURATION_BUCKETS,
                )
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
            }
            let upkeep = handle.clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
            handle
        });
        Self {
            handle: handle.clone(),
            collectors: Arc::default(),
            on_own_port: false,
        }
    }

    /// Runs `collect` before every scrape, to set gauges from current state.
    pub fn collect_with(&self, collect: impl Fn() + Send + Sync + 'static) {
        self.collectors
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::new(collect));
    }

    /// Mounts `GET /metrics`, unless it is served on a port of its own.
    pub fn routes(&self, config: &mut web::ServiceConfig) {
        if !self.on_own_port {
            self.mount(config);
        }
    }

    fn mount(&self, config: &mut web::ServiceConfig) {
        let metrics = self.clone();
        config.route(
            "/metrics",
            web::get().to(move || {
                let metrics = metrics.clone();
                async move {
                    let collectors = metrics
                        .collectors
                        .read()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .clone();
                    for collect in &collectors {
                        collect();
                    }
                    HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4; charset=utf-8")
                        .body(metrics.handle.render())
                }
            }),
        );
    }

    /// Serves `/metrics` alone on `host:port`, until `shutdown` turns true. Returns the
    /// bound port.
    fn serve_on(
        &self,
        host: IpAddr,
        port: u16,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<u16> {
        let listener = TcpListener::bind((host, port))?;
        let port = listener.local_addr()?.port();
        let metrics = self.clone();
        let server = HttpServer::new(move || App::new().configure(|config| metrics.mount(config)))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
            handle.stop(true).await;
        });
        Ok(port)
    }
}

/// Middleware: counts and times each request by method, route pattern and status. Paths
/// that match no route share the `unmatched` label, so scanners cannot grow the series.
pub async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    // OpenTelemetry's conventions: a method that is not a standard one is `_OTHER`.
    let method = crate::telemetry::standard_method(request.method()).unwrap_or("_OTHER");
    let route = request.match_pattern();
    let result = next.call(request).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    let route = route.as_deref().unwrap_or("unmatched");
    record_request(method, route, status, started.elapsed());
    result
}

thread_local! {
    /// The counter and histogram of each method, status and route this worker thread has
    /// answered, registered once: a request then records without building labels again.
    /// Bounded, as the labels are: methods are named or `_OTHER`, routes are patterns.
    static SERIES: RefCell<HashMap<(&'static str, StatusCode), ByRoute>> = RefCell::default();
}

/// The series of one method and status, by route.
type ByRoute = HashMap<String, Series>;

/// The request counter and duration histogram of one method, route and status.
struct Series {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

fn record_request(method: &'static str, route: &str, status: StatusCode, elapsed: Duration) {
    SERIES.with_borrow_mut(|series| {
        let by_route = series.entry((method, status)).or_default();
        let handles = match by_route.get(route) {
            Some(handles) => handles,
            None => {
                let labels = [
                    ("method", method.to_owned()),
                    ("route", route.to_owned()),
                    ("status", status.as_str().to_owned()),
                ];
                by_route.entry(route.to_owned()).or_insert(Series {
                    requests: metrics::counter!("http_server_requests_total", &labels),
                    duration: metrics::histogram!(REQUEST_DURATION, &labels),
                })
            }
        };
        handles.requests.increment(1);
        handles.duration.record(elapsed.as_secs_f64());
    });
}
