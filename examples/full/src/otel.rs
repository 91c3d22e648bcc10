//! OpenTelemetry traces: every span is exported over OTLP/HTTP once an endpoint is set, a
//! W3C `traceparent` header continues the caller's trace, and the trace id is recorded on
//! the request span, so it is on every log line of the request.
//!
//! Configured by the standard variables, read by the OpenTelemetry SDK itself:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; nothing is
//! exported without one), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME` (the package name
//! by default), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*` and
//! `OTEL_SDK_DISABLED`.

use std::sync::OnceLock;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{ExporterBuildError, SpanExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The `tracing` layer that turns spans into OpenTelemetry spans. Spans get trace ids
/// even when nothing is exported, so logs and callers can still correlate.
pub fn layer<S>() -> Result<OpenTelemetryLayer<S, SdkTracer>, ExporterBuildError>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(env!("CARGO_PKG_NAME"));
    }
    let mut provider = SdkTracerProvider::builder().with_resource(resource.build());
    if exporting() {
        provider = provider.with_batch_exporter(SpanExporter::builder().with_http().build()?);
    }
    let provider = PROVIDER.get_or_init(|| provider.build());
    Ok(tracing_opentelemetry::layer().with_tracer(provider.tracer(env!("CARGO_PKG_NAME"))))
}

/// Whether an OTLP endpoint is configured and the SDK is not disabled.
fn exporting() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled =
        std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Names `span` for OpenTelemetry (`GET /users/{id}`), makes it a child of the caller's
/// trace when the request carries a valid `traceparent`, then records the trace id in the
/// span's `trace_id` field.
pub fn continue_trace(request: &ServiceRequest, span: &Span) {
    if span.is_disabled() {
        return;
    }
    let route = request.match_pattern();
    let route = route.as_deref().unwrap_or("default");
    // OpenTelemetry's conventions: `HTTP` for a method that is not a standard one.
    let method = crate::telemetry::standard_method(request.method()).unwrap_or("HTTP");
    span.record(
        "otel.name",
        tracing::field::display(format_args!("{method} {route}")),
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(request.headers()))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Exports the spans still buffered when dropped, once, before the process exits.
pub struct Flush;

impl Drop for Flush {
    fn drop(&mut self) {
        if let Some(provider) = PROVIDER.get()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "could not flush the last spans");
        }
    }
}

/// Reads propagation headers from an actix-web request.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}
