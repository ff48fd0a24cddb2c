use std::time::Instant;

use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web,
};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's id: taken from `X-Request-Id` when the caller (the ingress) sent
/// a sane one, otherwise made here. It is on every log line of the request and
/// on the response.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    fn from_header(value: Option<&HeaderValue>) -> Self {
        value
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 128
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            })
            .map(|v| Self(v.to_owned()))
            .unwrap_or_else(|| Self(uuid::Uuid::new_v4().to_string()))
    }
}

/// Request counts and latency by route pattern (never the raw path, which would
/// make a label per room name).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }
}

/// The request method as a bounded label: actix accepts any token as a method,
/// and a label per token would grow the series without end.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The health, readiness and metrics routes of every service.
fn is_probe(route: &str) -> bool {
    matches!(
        route,
        "/healthz" | "/readyz" | "/metrics" | "/v1/whereby/health"
    )
}

/// Middleware: request id, a span around the request, an access log line and the
/// HTTP metrics. Wrap it outermost with `actix_web::middleware::from_fn`.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = RequestId::from_header(req.headers().get(REQUEST_ID_HEADER));
    req.extensions_mut().insert(request_id.clone());
    let method = method_label(req.method());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    // Probes and scrapes get a debug span: not a trace per kubelet probe.
    let span = if is_probe(&route) {
        tracing::debug_span!("http", request_id = %request_id.0, %method, %route)
    } else {
        tracing::info_span!("http", request_id = %request_id.0, %method, %route)
    };
    // A caller's W3C trace context (`traceparent`) makes this request part of its
    // trace; webhook-ingest carries it on into the queue.
    telemetry::trace::follow(&span, |name| {
        req.headers().get(name).and_then(|v| v.to_str().ok())
    });

    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    span.in_scope(|| {
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        // Probes and scrapes arrive every few seconds from every kubelet and
        // Prometheus: at debug, so that info is the service's own traffic; a
        // probe that fails (unready, 503) stays at info.
        if is_probe(&route) && status < 500 {
            tracing::debug!(status, latency_ms, "request finished");
        } else {
            tracing::info!(status, latency_ms, "request finished");
        }
    });
    if let Some(m) = metrics {
        m.requests
            .with_label_values(&[method, route.as_str(), &status.to_string()])
            .inc();
        m.duration
            .with_label_values(&[method, route.as_str()])
            .observe(elapsed.as_secs_f64());
    }
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;

    use super::{is_probe, method_label};

    #[test]
    fn only_health_readiness_and_metrics_are_probes() {
        for route in ["/healthz", "/readyz", "/metrics", "/v1/whereby/health"] {
            assert!(is_probe(route), "{route}");
        }
        for route in ["/v1/whereby", "/v1/rooms/{room}", "unmatched", "/healthz/x"] {
            assert!(!is_probe(route), "{route}");
        }
    }

    #[test]
    fn invented_methods_share_one_label() {
        let labels: std::collections::HashSet<_> = (0..1000)
            .filter_map(|i| Method::from_bytes(format!("QZX{i}").as_bytes()).ok())
            .map(|m| method_label(&m))
            .collect();
        assert_eq!(labels.into_iter().collect::<Vec<_>>(), ["other"]);
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}

/// The longest a request may take ([`request_deadline`]), set as app data.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub std::time::Duration);

/// Middleware: a request that takes longer than its [`RequestDeadline`] (30 s when
/// none is set) is answered 503 `timeout`. The handler's future is dropped, and
/// with it whatever it was waiting for (a database that stopped answering holds
/// nothing for longer than this). Wrap it inside [`request_context`].
pub async fn request_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let limit = req
        .app_data::<web::Data<RequestDeadline>>()
        .map_or(std::time::Duration::from_secs(30), |d| d.0);
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "request deadline passed"
            );
            Err(crate::ApiError::unavailable("timeout", "the request took too long; retry").into())
        }
    }
}
