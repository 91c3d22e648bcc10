//! Logging and tracing: one subscriber formats everything the process prints.
//!
//! `tracing` events, records from the `log` crate (actix-web's own server among them) and
//! panics all go through the same layer: bunyan JSON lines when `LOG_JSON_OUTPUT` is on,
//! human-readable lines otherwise.

use std::io::IsTerminal;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, fmt};

use crate::client_ip::client_ip;
use crate::request_id::RequestId;
use crate::settings::LogSettings;

/// The running telemetry: dropping it flushes what is still buffered (OpenTelemetry's
/// spans), so `main` keeps it until it returns.
#[must_use = "dropping it flushes and stops what telemetry still exports"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    _otel: crate::otel::Flush,
}

/// Installs the global subscriber, forwards `log` records to it and logs panics.
pub fn init(settings: &LogSettings) -> Result<Telemetry, Box<dyn std::error::Error>> {
    let subscriber = Registry::default().with(settings.env_filter());
    #[cfg(feature = "otel")]
    let subscriber = subscriber.with(crate::otel::layer()?);
    if settings.json {
        subscriber
            .with(JsonStorageLayer)
            .with(BunyanFormattingLayer::new(
                env!("CARGO_PKG_NAME").to_owned(),
                std::io::stdout,
            ))
            .try_init()?;
    } else {
        subscriber
            .with(
                fmt::layer()
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_span_events(FmtSpan::CLOSE),
            )
            .try_init()?;
    }
    log_panics();
    Ok(Telemetry {
        #[cfg(feature = "otel")]
        _otel: crate::otel::Flush,
    })
}

/// Replaces the default panic output (plain text on stderr) with an error event, so a
/// panic reaches the log pipeline in the same format as everything else.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload_as_str().unwrap_or("non-string panic payload");
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!(
            panic.message = message,
            panic.location = %location,
            panic.backtrace = %backtrace,
            "panic: {message}"
        );
    }));
}

/// The span every request runs in. Its fields appear on every log line of the request.
///
/// Only the path is recorded, never the query string (it can carry credentials), and no
/// header but `User-Agent`: an `Authorization` header never reaches the logs. The user
/// agent is recorded as a string, which the human-readable format quotes and escapes, so
/// it cannot forge other fields. The client's address is the peer's unless
/// `TRUSTED_PROXIES` says otherwise (see [`crate::client_ip`]).
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = tracing::field::Empty,
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.path(),
            http.client_ip = client_ip(request).map(tracing::field::display),
            http.user_agent = user_agent,
            http.status_code = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            trace_id = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        );
        #[cfg(feature = "otel")]
        crate::otel::continue_trace(request, &route, &span);
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
