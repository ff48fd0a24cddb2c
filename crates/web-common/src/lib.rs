//! actix-web glue shared by our HTTP services.
//!
//! Error policy: every error leaves a service as JSON `{"error": {"code", "message",
//! "field"?}}` with a stable `code`. Internal causes (SQL, I/O, upstream bodies) are
//! logged where they happen and never serialised.

mod body;
mod error;
mod middleware;
mod readiness;
mod server;

pub use body::{
    BodyError, BodyLimit, BudgetHold, ByteBudget, JsonBody, read_body, read_body_budgeted,
    too_large,
};
pub use error::ApiError;
pub use middleware::{
    HttpMetrics, REQUEST_ID_HEADER, RequestDeadline, RequestId, method_label, request_context,
    request_deadline,
};
pub use readiness::Readiness;
pub use server::{ServerOptions, run_until, serve};

use actix_web::{HttpResponse, web};
use prometheus::Registry;

/// `GET /healthz`: the process is up. Cheap; never touches a dependency.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /metrics` in the prometheus text format.
pub async fn metrics(registry: web::Data<Registry>) -> HttpResponse {
    let mut buf = Vec::new();
    let encoded = prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &telemetry::gather(&registry),
        &mut buf,
    );
    match encoded {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(buf),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The JSON 404 for paths no route matches.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such resource"))
}
