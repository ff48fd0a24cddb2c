//! Distributed traces (OpenTelemetry), off unless an OTLP endpoint is configured
//! with the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_EXPORTER_OTLP_PROTOCOL`,
//! `_HEADERS`, `_TIMEOUT`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*` and `OTEL_SDK_DISABLED` are honoured).
//!
//! Our spans become OpenTelemetry spans through `tracing-opentelemetry`. W3C
//! trace context (`traceparent`, `tracestate`) crosses every hop: accepted on HTTP
//! ([`follow`]), written into the AMQP headers of what we publish
//! ([`current_context_headers`]) and read back by the consumer, so one trace runs
//! from Whereby's POST to the committed row, and from an S3 notification to the
//! pipeline's hand-off.

use std::collections::HashMap;

use opentelemetry::{
    KeyValue,
    propagation::{Extractor, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C headers this module reads and writes.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Whether the environment asks for traces.
pub fn configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The tracer provider exporting over OTLP/HTTP in batches (a thread of its own),
/// named `service` unless `OTEL_SERVICE_NAME` says otherwise.
pub(crate) fn provider(service: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| e.to_string())?;
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", crate::VERSION))
        .with_attribute(KeyValue::new("vcs.ref.head.revision", crate::GIT_SHA));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build())
}

pub(crate) fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("whereby-integration"))
}

/// Makes `span` a child of the trace context carried by a request or a message
/// (`get` reads one header by name). No context, an invalid one, or tracing off:
/// `span` stays a root, nothing else changes.
pub fn follow<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    let Some(parent) = get(TRACEPARENT) else {
        return;
    };
    // Bounded: a header is at most a few hundred bytes; anything larger is not ours.
    if parent.len() > 128 {
        return;
    }
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert(TRACEPARENT, parent);
    if let Some(state) = get(TRACESTATE).filter(|s| s.len() <= 512) {
        carrier.insert(TRACESTATE, state);
    }
    let context = TraceContextPropagator::new().extract(&Carrier(&carrier));
    if context.span().span_context().is_remote() {
        let _ = span.set_parent(context);
    }
}

/// The W3C headers for the current span's context, to put on what is published
/// next; empty when tracing is off or there is no span.
pub fn current_context_headers() -> Vec<(&'static str, String)> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut headers);
    [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(|name| headers.remove(name).map(|v| (name, v)))
        .collect()
}

/// Links `span` to `to` (OpenTelemetry's way for work done for several traces at
/// once: a batch that applies events from many requests). No-op when untraced.
pub fn link(span: &tracing::Span, to: &tracing::Span) {
    let context = to.context();
    let target = context.span().span_context().clone();
    if target.is_valid() {
        span.add_link(target);
    }
}

/// The trace and span id of `span`, when it is traced: for log lines.
pub(crate) fn ids(span: &tracing::Span) -> Option<(String, String)> {
    let context = span.context();
    let span_ref = context.span();
    let ids = span_ref.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

struct Carrier<'a>(&'a HashMap<&'static str, &'a str>);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).copied()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_tracer_nothing_is_injected_and_following_is_harmless() {
        let span = tracing::info_span!("x");
        follow(&span, |name| {
            (name == TRACEPARENT)
                .then_some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        });
        follow(&span, |_| Some("garbage"));
        follow(&span, |_| None);
        assert!(span.in_scope(current_context_headers).is_empty());
    }
}
