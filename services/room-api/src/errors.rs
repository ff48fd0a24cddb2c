//! How failures of our dependencies become HTTP errors. Causes are logged here and
//! never sent to the caller.

use db::{PoolError, QueryError};
use web_common::ApiError;
use whereby::WherebyError;

/// No connection could be had from the pool: Postgres is down or saturated.
pub fn pool(e: PoolError) -> ApiError {
    tracing::error!(error = %e, "no database connection");
    ApiError::unavailable(
        "database_unavailable",
        "the database is unavailable; retry later",
    )
}

/// A query failed: by its SQLSTATE, 503 when retrying can succeed (a failover, a
/// deadlock, a lock or statement timeout, exhausted resources); anything else is a
/// bug or a broken invariant: 500.
pub fn query(e: QueryError) -> ApiError {
    match db::classify(&e) {
        db::Failure::Busy => ApiError::unavailable(
            "busy",
            "another request is working on this room; retry shortly",
        ),
        db::Failure::Unavailable => {
            tracing::error!(error = %e, "database unavailable");
            ApiError::unavailable(
                "database_unavailable",
                "the database is unavailable; retry later",
            )
        }
        db::Failure::Permanent => {
            tracing::error!(error = %e, "database query failed");
            ApiError::internal()
        }
    }
}

/// A stored value that the schema's CHECK constraints should have made impossible.
pub fn corrupt(e: domain::ValidationError) -> ApiError {
    tracing::error!(error = %e, "stored row violates a domain rule");
    ApiError::internal()
}

/// Whereby failing gives our caller 502, or 503 when Whereby throttles us.
pub fn whereby(e: &WherebyError) -> ApiError {
    match e {
        WherebyError::Throttled { .. } => ApiError::unavailable(
            "whereby_throttled",
            "Whereby is rate limiting meeting creation; retry later",
        ),
        WherebyError::Unavailable(reason) => ApiError::bad_gateway(
            "whereby_unavailable",
            format!("Whereby did not answer successfully ({reason})"),
        ),
        WherebyError::Refused { status, .. } => ApiError::bad_gateway(
            "whereby_refused",
            format!("Whereby refused our request (HTTP {status}); check the API key and plan"),
        ),
        WherebyError::Rejected { status, message } => ApiError::bad_gateway(
            "whereby_rejected",
            format!("Whereby rejected the request (HTTP {status}): {message}"),
        ),
        WherebyError::NotFound => {
            ApiError::bad_gateway("whereby_not_found", "Whereby does not know this meeting")
        }
        WherebyError::InvalidRequest(reason) => {
            tracing::error!(%reason, "refused to send a request to Whereby");
            ApiError::internal()
        }
        WherebyError::InvalidResponse(_) => ApiError::bad_gateway(
            "whereby_invalid_response",
            "Whereby answered with an unexpected response",
        ),
    }
}
