//! Logging and tracing: one subscriber formats everything the process prints.
//!
//! `tracing` events, records from the `log` crate (actix-web's own server among them) and
//! panics all go through the same layer: bunyan JSON lines ([`crate::bunyan`]) when
//! `LOG_JSON_OUTPUT` is on, human-readable lines otherwise. A request is one line, written
//! when its span closes, with every field the span gathered (status and elapsed time
//! included).
//!
//! Lines are formatted on the thread that logs them and written by a thread of their own,
//! many to a system call ([`crate::log_writer`]): a request does not wait for standard
//! output. Nothing is dropped: when whoever reads the output stalls, logging waits, and the
//! service slows down instead.

use std::io::IsTerminal;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, fmt};

use crate::bunyan::Bunyan;
use crate::client_ip::{Address, client_ip};
use crate::log_writer::{self, LogWriter};
use crate::request_id::RequestId;
use crate::settings::LogSettings;

/// The running telemetry: dropping it writes the lines still queued and flushes what else
/// is buffered (OpenTelemetry's spans), so `main` keeps it until it returns.
#[must_use = "dropping it flushes and stops what telemetry still writes and exports"]
pub struct Telemetry {
    _writer: log_writer::Flush,
    #[cfg(feature = "otel")]
    _otel: crate::otel::Flush,
}

/// Installs the global subscriber, forwards `log` records to it and logs panics.
pub fn init(settings: &LogSettings) -> Result<Telemetry, Box<dyn std::error::Error>> {
    let ansi = std::io::stdout().is_terminal();
    let (writer, flush) = LogWriter::start(std::io::stdout(), log_writer::BUFFER_BYTES)?;
    let subscriber = Registry::default().with(settings.filter.clone());
    #[cfg(feature = "otel")]
    let subscriber = subscriber.with(crate::otel::layer()?);
    if settings.json {
        subscriber
            .with(Bunyan::new(env!("CARGO_PKG_NAME"), writer))
            .try_init()?;
    } else {
        subscriber
            .with(
                fmt::layer()
                    .with_writer(writer)
                    .with_ansi(ansi)
                    .with_span_events(FmtSpan::CLOSE),
            )
            .try_init()?;
    }
    log_panics();
    Ok(Telemetry {
        _writer: flush,
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

/// The name of a standard HTTP method, `None` for any other: a client may send any token as
/// its method, so series and span names use this (with OpenTelemetry's `_OTHER` or `HTTP`
/// for the rest) to stay bounded.
pub fn standard_method(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return None,
    })
}

/// The span every request runs in. Its fields appear on every log line of the request.
///
/// Only the path is recorded, never the query string (it can carry credentials), and no
/// header but `User-Agent`: an `Authorization` header never reaches the logs. The user
/// agent is recorded as a string, which the human-readable format quotes and escapes, so
/// it cannot forge other fields; so are the method, route and path, which costs the JSON
/// format less than formatting them. The request id, whose characters are already
/// restricted, is shown as it is. The client's address is the peer's unless
/// `TRUSTED_PROXIES` says otherwise (see [`crate::client_ip`]).
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // The field values are computed only when the span is enabled (`LOG_LEVEL` at `info`
        // or finer, or OpenTelemetry on).
        let extensions = request.extensions();
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = tracing::field::Empty,
            http.method = request.method().as_str(),
            http.route = request.match_pattern().as_deref().unwrap_or("default"),
            http.target = request.path(),
            http.client_ip = client_ip(request).map(|ip| tracing::field::display(Address(ip))),
            http.user_agent = request
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|value| value.to_str().ok())
                .unwrap_or(""),
            http.status_code = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %extensions
                .get::<RequestId>()
                .map(RequestId::as_str)
                .unwrap_or_default(),
            trace_id = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        );
        drop(extensions);
        #[cfg(feature = "otel")]
        crate::otel::continue_trace(request, &span);
        span
    }

    /// As `tracing-actix-web` records it, except that an error's message is recorded as a
    /// string: it can carry the client's input (a JSON body's unknown field, say), which the
    /// human-readable format then quotes and escapes, so a newline in it cannot start a line
    /// of its own.
    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => match response.response().error() {
                Some(error) => (response.status(), error.as_response_error()),
                None => return DefaultRootSpanBuilder::on_request_end(span, outcome),
            },
            Err(error) => {
                let error = error.as_response_error();
                (error.status_code(), error)
            }
        };
        span.record("exception.message", error.to_string().as_str());
        span.record("exception.details", format!("{error:?}").as_str());
        span.record("http.status_code", i32::from(status.as_u16()));
        let outcome = if status.is_client_error() {
            "OK"
        } else {
            "ERROR"
        };
        span.record("otel.status_code", outcome);
    }
}
