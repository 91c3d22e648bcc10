//! Builds the HTTP server and runs it until a shutdown signal.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::KeepAlive;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tokio::sync::watch;
use tracing_actix_web::TracingLogger;

use crate::client_ip::TrustedProxies;
use crate::health::{self, Readiness};
use crate::policies;
use crate::problem;
use crate::request_id;
use crate::settings::{Environment, Settings};
use crate::telemetry::RequestSpan;

/// A bound, not yet running service. Tests build it on port 0 and ask for the port.
pub struct Application {
    #[cfg(feature = "auth")]
    _auth: crate::auth::Auth,
    #[cfg(feature = "database")]
    _database: crate::db::Database,
    server: Server,
    /// Turns true when shutdown begins, for background tasks to stop.
    shutdown: watch::Sender<bool>,
    address: SocketAddr,
    environment: Environment,
    readiness: Readiness,
    shutdown_delay: Duration,
    drain_timeout: Duration,
}

/// Mounts routes into a scope: `api_v1` or one of the tests'.
pub type Routes = fn(&mut web::ServiceConfig);

/// The modules that serve routes under `/api/v1`, one line each. They share one scope and
/// none owns the prefix, so their order does not matter (a test mounts them in reverse).
pub const API_V1: &[Routes] = &[
    #[cfg(feature = "auth")]
    crate::api::routes,
    #[cfg(feature = "database")]
    crate::users::routes,
];

/// Every route under `/api/v1`.
pub fn api_v1(config: &mut web::ServiceConfig) {
    for routes in API_V1 {
        routes(config);
    }
}

impl Application {
    /// Binds the listener and prepares the workers; nothing is served until it runs.
    pub async fn build(settings: &Settings) -> io::Result<Self> {
        Self::build_with(settings, api_v1).await
    }

    /// Like [`Application::build`], with `routes` under `/api/v1` instead of [`api_v1`].
    pub async fn build_with(settings: &Settings, routes: Routes) -> io::Result<Self> {
        let server_settings = &settings.server;
        let listener = TcpListener::bind((server_settings.host, server_settings.port))?;
        let address = listener.local_addr()?;
        let readiness = Readiness::default();
        let (shutdown, _) = watch::channel(false);
        // What each option starts once, before the workers: one line each.
        #[cfg(feature = "auth")]
        let auth = crate::auth::Auth::start(&settings.auth, address, &readiness)?;
        #[cfg(feature = "database")]
        let database = crate::db::Database::start(&settings.database, &readiness)?;
        #[cfg(feature = "metrics")]
        let metrics =
            crate::metrics::Metrics::start(&settings.metrics, server_settings.host, &shutdown)?;
        #[cfg(all(feature = "metrics", feature = "database"))]
        metrics.collect_with(database.pool_gauges());
        #[cfg(feature = "scheduler")]
        crate::scheduler::start(&settings.scheduler, database.pool(), shutdown.subscribe());

        let app_readiness = readiness.clone();
        let trusted_proxies = TrustedProxies::new(server_settings.trusted_proxies.clone());
        if !server_settings.trusted_proxies.is_empty() {
            tracing::info!(
                proxies = ?server_settings.trusted_proxies,
                "TRUSTED_PROXIES: their X-Forwarded-For and Forwarded headers name the client in the logs"
            );
        }
        let json_body_limit = server_settings.json_body_limit;
        let request_timeout = server_settings.request_timeout;
        let cors_allowed_origins = server_settings.cors_allowed_origins.clone();
        #[cfg(feature = "auth")]
        let auth_routes = auth.routes();
        #[cfg(feature = "database")]
        let pool = web::Data::new(database.pool());
        let mut server = HttpServer::new(move || {
            let app = App::new()
                .wrap(from_fn(move |request, next| {
                    policies::time_limit(request_timeout, request, next)
                }))
                .wrap(policies::cors(&cors_allowed_origins))
                .wrap(policies::security_headers())
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(request_id::propagate));
            // What each option adds to every worker's app: one line each.
            #[cfg(feature = "metrics")]
            let app = app.wrap(from_fn(crate::metrics::record));
            #[cfg(feature = "metrics")]
            let app = app.configure(|config| metrics.routes(config));
            #[cfg(feature = "openapi")]
            let app = app.configure(crate::openapi::routes);
            #[cfg(feature = "auth")]
            let app = app.configure(|config| auth_routes.configure(config));
            #[cfg(feature = "database")]
            let app = app.app_data(pool.clone());
            app.app_data(web::Data::new(app_readiness.clone()))
                .app_data(trusted_proxies.clone())
                .app_data(problem::json_config(json_body_limit))
                .app_data(problem::query_config())
                .configure(health::routes)
                .service(web::scope("/api/v1").configure(routes))
                .default_service(web::to(problem::not_found))
        })
        .keep_alive(keep_alive(server_settings.keep_alive))
        .client_request_timeout(server_settings.client_request_timeout)
        .shutdown_timeout(server_settings.drain_timeout.as_secs())
        // Signals are handled in `run_until_stopped`, so readiness can flip first.
        .disable_signals();
        if let Some(workers) = server_settings.workers {
            server = server.workers(workers.get());
        }
        let server = server.listen(listener)?.run();

        Ok(Self {
            #[cfg(feature = "auth")]
            _auth: auth,
            #[cfg(feature = "database")]
            _database: database,
            server,
            shutdown,
            address,
            environment: settings.environment,
            readiness,
            shutdown_delay: server_settings.shutdown_delay,
            drain_timeout: server_settings.drain_timeout,
        })
    }

    /// The port the listener is bound to (useful when the settings asked for port 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The readiness state, to register dependency checks.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Serves until SIGTERM or SIGINT (Ctrl-C), then shuts down gracefully.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let signal = shutdown_signal()?;
        self.run_until(signal).await
    }

    /// Serves until `shutdown` completes. Then readiness turns 503 at once; after the
    /// shutdown delay the listener closes and in-flight requests get up to the drain timeout
    /// to finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        // Logged only now: by the time anyone reads it, the shutdown signals are handled.
        tracing::info!(address = %self.address, environment = %self.environment, "listening");
        let handle = self.server.handle();
        let mut server = std::pin::pin!(self.server);
        tokio::select! {
            result = &mut server => return result,
            () = shutdown => {}
        }
        self.readiness.begin_shutdown();
        self.shutdown.send_replace(true);
        if !self.shutdown_delay.is_zero() {
            tracing::info!(
                shutdown_delay_secs = self.shutdown_delay.as_secs(),
                "shutdown signal received; readiness is 503, serving until load balancers notice"
            );
            tokio::select! {
                result = &mut server => return result,
                () = tokio::time::sleep(self.shutdown_delay) => {}
            }
        }
        tracing::info!(
            drain_timeout_secs = self.drain_timeout.as_secs(),
            "shutdown signal received; closing the listener and draining in-flight requests"
        );
        // The server future processes the stop command, so both are polled together.
        let (result, ()) = tokio::join!(server, handle.stop(true));
        tracing::info!("shutdown complete");
        result
    }
}

fn keep_alive(idle: Duration) -> KeepAlive {
    if idle.is_zero() {
        KeepAlive::Disabled
    } else {
        KeepAlive::Timeout(idle)
    }
}

/// Resolves on the first SIGTERM or SIGINT.
#[cfg(unix)]
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Resolves on the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
