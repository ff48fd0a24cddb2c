use std::{sync::Arc, time::Duration};

use actix_web::{HttpMessage, HttpRequest, HttpResponse, http::header, web};
use chrono::Utc;
use domain::webhook::EventHeader;
use messaging::{Publisher, SCHEMA_VERSION, WebhookEnvelope};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;
use web_common::{ApiError, BodyError, ByteBudget, RequestId, read_body_budgeted, too_large};
use whereby::webhook::{self, SIGNATURE_HEADER};

use crate::{
    limiter::{FailureLimiter, client_address},
    metrics::{IngestMetrics, type_label},
    settings::SMALL_BODY_BYTES,
};

pub struct IngestState {
    pub publisher: Publisher,
    pub secrets: Vec<Vec<u8>>,
    pub tolerance_secs: i64,
    pub body_limit: usize,
    /// Bytes of bodies held at once across all requests (bounds the pod's memory).
    pub body_budget: ByteBudget,
    pub body_timeout: Duration,
    pub publish_timeout: Duration,
    pub in_flight: Arc<Semaphore>,
    pub metrics: IngestMetrics,
    pub tasks: telemetry::Supervisor,
    /// Failed verifications per client address (429 past the limit).
    pub limiter: FailureLimiter,
    /// Where the client address comes from: a trusted proxy's header, or the peer.
    pub client_address_header: Option<header::HeaderName>,
    pub trusted_proxy_hops: usize,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/whereby", web::post().to(receive))
        .route("/v1/whereby/health", web::get().to(health))
        .route("/healthz", web::get().to(web_common::healthz))
        .route("/readyz", web::get().to(health))
        .route("/metrics", web::get().to(web_common::metrics))
        .default_service(web::to(web_common::not_found));
}

fn unavailable(message: &str) -> ApiError {
    ApiError::unavailable("unavailable", message.to_owned())
}

/// `POST /v1/whereby`.
pub async fn receive(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let m = &state.metrics;
    m.received.inc();
    // Overload answers 503, which Whereby retries; 429 it would not.
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        m.reject("overloaded");
        return Err(unavailable("too many webhooks in flight; retry"));
    };

    let client = client_address(
        state
            .client_address_header
            .as_ref()
            .and_then(|h| req.headers().get(h))
            .and_then(|v| v.to_str().ok()),
        state.trusted_proxy_hops,
        req.peer_addr().map(|a| a.ip()),
    );
    // An address over its limit of failed verifications: its failures are 429,
    // and it may make us read only a small body (every real Whereby event is).
    let limited = client.is_some_and(|a| state.limiter.is_limited(a));
    let refuse = |e: webhook::SignatureError| {
        if let Some(a) = client {
            state.limiter.failed(a);
        }
        refuse_signature(m, e, limited)
    };

    // The signature header first: a request without a well-formed, fresh one can
    // never succeed, so its body is never read (nor buffered).
    let signature = req
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    let now = Utc::now().timestamp();
    let signature =
        webhook::SignatureHeader::check(signature, now, state.tolerance_secs).map_err(refuse)?;

    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if limited && declared.is_none_or(|n| n > SMALL_BODY_BYTES) {
        m.reject("rate_limited");
        return Err(rate_limited());
    }
    let (body, _budget) = read_body_budgeted(
        &mut payload,
        state.body_limit,
        declared,
        &state.body_budget,
        state.body_timeout,
    )
    .await
    .map_err(|e| {
        m.reject(e.reason());
        match e {
            BodyError::TooLarge => too_large(state.body_limit),
            BodyError::OverBudget => unavailable("too many webhook bytes in flight; retry"),
            BodyError::TooSlow => ApiError::new(
                actix_web::http::StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body was not received in time",
            ),
            BodyError::Unreadable => {
                ApiError::bad_request("invalid_body", "the request body could not be read")
            }
        }
    })?;

    // Then the HMAC, over the exact bytes received: nothing is parsed before.
    let secrets: Vec<&[u8]> = state.secrets.iter().map(Vec::as_slice).collect();
    signature.verify(&body, &secrets).map_err(refuse)?;

    // Parsed whole, as the worker will parse it (so that what the worker could
    // never read, a number out of range say, is refused here and not queued), and
    // forwarded as the bytes received: no second serialisation.
    let not_json = |_| {
        m.reject("invalid_json");
        ApiError::bad_request("invalid_json", "the body is not JSON")
    };
    let parsed: serde_json::Value = serde_json::from_slice(&body).map_err(not_json)?;
    let header = EventHeader::of_event(&parsed).ok_or_else(|| {
        m.reject("invalid_event");
        ApiError::bad_request(
            "invalid_event",
            "the event needs a string `id` and `type` and an RFC 3339 `createdAt`",
        )
    })?;
    drop(parsed);
    let event: &RawValue = serde_json::from_slice(&body).map_err(not_json)?;

    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let envelope = WebhookEnvelope {
        schema_version: SCHEMA_VERSION,
        received_at: Utc::now(),
        request_id: request_id.clone(),
        event,
    };
    let bytes = serde_json::to_vec(&envelope).map_err(|e| {
        tracing::error!(error = %e, "cannot serialise envelope");
        ApiError::internal()
    })?;
    state
        .publisher
        .publish_webhook(
            &envelope,
            &header.id,
            &header.event_type,
            &bytes,
            state.publish_timeout,
        )
        .await
        .map_err(|e| {
            m.reject(&format!("publish_{}", e.reason()));
            tracing::warn!(event_id = %header.id, error = %e, "could not enqueue webhook");
            unavailable("the event could not be queued; retry")
        })?;
    m.enqueued
        .with_label_values(&[type_label(&header.event_type)])
        .inc();
    tracing::info!(event_id = %header.id, event_type = %header.event_type, "enqueued webhook");
    Ok(HttpResponse::Ok().json(json!({"status": "ok"})))
}

fn refuse_signature(m: &IngestMetrics, e: webhook::SignatureError, limited: bool) -> ApiError {
    tracing::info!(reason = e.reason(), limited, "rejected webhook signature");
    if limited {
        m.reject("rate_limited");
        return rate_limited();
    }
    m.reject(e.reason());
    // Deliberately vague: no expected value, no hint which part failed.
    ApiError::unauthorized("invalid webhook signature")
}

/// 429 for an address over its limit of failed verifications. Never for a
/// correctly signed event: Whereby does not retry a 429.
fn rate_limited() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many webhooks failed verification from this address; slow down",
    )
}

/// `GET /v1/whereby/health` and `/readyz`: ready while RabbitMQ is connected
/// and the publisher's connection loop runs.
pub async fn health(state: web::Data<IngestState>) -> HttpResponse {
    web_common::Readiness::new()
        .check("broker", state.publisher.is_connected())
        .tasks_down(state.tasks.down_tasks())
        .respond()
}
