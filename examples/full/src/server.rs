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
    _auth: crate::auth::Auth,
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

impl Application {
    /// Binds the listener and prepares the workers; nothing is served until it runs.
    pub async fn build(settings: &Settings) -> io::Result<Self> {
        let server_settings = &settings.server;
        let listener = TcpListener::bind((server_settings.host, server_settings.port))?;
        let address = listener.local_addr()?;
        let readiness = Readiness::default();
        let (shutdown, _) = watch::channel(false);
        let auth = crate::auth::Auth::start(&settings.auth, address, &readiness)?;
        let auth_routes = auth.routes();
        let database = crate::db::Database::start(&settings.database, &readiness)?;
        let pool = web::Data::new(database.pool());
        let metrics = crate::metrics::Metrics::install();
        let metrics = metrics.collect_with(database.pool_gauges());
        // On a port of its own, /metrics stays off the public listener.
        let app_metrics = match settings.metrics.port {
            Some(port) => {
                let port = metrics.serve_on(server_settings.host, port, shutdown.subscribe())?;
                tracing::info!(port, "serving /metrics on its own port");
                None
            }
            None => Some(metrics),
        };
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
        let mut server = HttpServer::new(move || {
            // ANCHOR: app
            App::new()
                .wrap(from_fn(move |request, next| {
                    policies::time_limit(request_timeout, request, next)
                }))
                .wrap(policies::cors(&cors_allowed_origins))
                .wrap(policies::security_headers())
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(request_id::propagate))
                .wrap(from_fn(crate::metrics::record))
                .app_data(web::Data::new(app_readiness.clone()))
                .app_data(trusted_proxies.clone())
                .app_data(problem::json_config(json_body_limit))
                .app_data(problem::query_config())
                .configure(health::routes)
                .configure(|config| {
                    if let Some(metrics) = &app_metrics {
                        metrics.routes(config);
                    }
                })
                .configure(crate::openapi::routes)
                .app_data(pool.clone())
                // Before the sample API: its `/api/v1` scope would take `/api/v1/users` too.
                .configure(crate::users::routes)
                .configure(|config| auth_routes.configure(config))
                .configure(crate::api::routes)
                .default_service(web::to(problem::not_found))
            // ANCHOR_END: app
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
            _auth: auth,
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

    // ANCHOR: run_until
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
    // ANCHOR_END: run_until
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
