//! The error codes this API answers with, their JSON shape as documented, and how
//! failures of our dependencies become HTTP errors. Causes are logged here and
//! never sent to the caller.

use db::{PoolError, QueryError};
use serde::Serialize;
use utoipa::ToSchema;
use web_common::ApiError;
use whereby::WherebyError;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $wire:tt),+ $(,)?) => {
        /// Every stable `error.code` room-api can answer with: its own and those of
        /// `web-common`'s extractors and middleware. A test reads both crates'
        /// sources for codes missing here.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        pub enum ErrorCode {
            $($(#[$doc])* #[serde(rename = $wire)] $variant),+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire),+
                }
            }
        }
    };
}

error_codes! {
    /// 400: the body is not JSON.
    InvalidJson => "invalid_json",
    /// 400: the body could not be read (a broken connection or encoding).
    InvalidBody => "invalid_body",
    /// 400: the query string is malformed.
    InvalidQuery => "invalid_query",
    /// 409: the meeting was deactivated.
    MeetingInactive => "meeting_inactive",
    /// 409: the meeting is past its end date.
    MeetingEnded => "meeting_ended",
    /// 401: no, or no valid, bearer token.
    Unauthorized => "unauthorized",
    /// 403: authenticated, but not allowed (not the owner, not an operator).
    Forbidden => "forbidden",
    /// 404: no such resource, or one the caller cannot see.
    NotFound => "not_found",
    /// 405: the path exists, the method does not (see `Allow`).
    MethodNotAllowed => "method_not_allowed",
    /// 409: the room name is taken.
    RoomNameTaken => "room_name_taken",
    /// 409: a recording's status cannot go backwards.
    StatusConflict => "status_conflict",
    /// 413: the body is over the limit.
    PayloadTooLarge => "payload_too_large",
    /// 415: the body's `Content-Type` is not the one expected.
    UnsupportedMediaType => "unsupported_media_type",
    /// 422: a field (named in `field`) breaks a rule.
    ValidationFailed => "validation_failed",
    /// 500: a bug; the cause is logged.
    InternalError => "internal_error",
    /// 502: Whereby could not be reached or failed.
    WherebyUnavailable => "whereby_unavailable",
    /// 502: Whereby refused our credentials or plan.
    WherebyRefused => "whereby_refused",
    /// 502: Whereby rejected the request.
    WherebyRejected => "whereby_rejected",
    /// 502: Whereby does not know the meeting.
    WherebyNotFound => "whereby_not_found",
    /// 502: Whereby answered something we cannot read.
    WherebyInvalidResponse => "whereby_invalid_response",
    /// 503: Whereby is rate limiting us.
    WherebyThrottled => "whereby_throttled",
    /// 503: the database is unavailable.
    DatabaseUnavailable => "database_unavailable",
    /// 503: another request holds the room; retry.
    Busy => "busy",
    /// 503: the request took longer than its deadline.
    Timeout => "timeout",
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people; may change. Match on `code`.
    pub message: String,
    /// The offending input, for 422: a body field's path (`colors.primary`), a
    /// query parameter, or `body` for the body as a whole. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// No connection could be had from the pool: Postgres is down or saturated.
pub fn pool(e: PoolError) -> ApiError {
    tracing::error!(error = %e, "no database connection");
    ApiError::unavailable(
        ErrorCode::DatabaseUnavailable.as_str(),
        "the database is unavailable; retry later",
    )
}

/// A query failed: by its SQLSTATE, 503 when retrying can succeed (a failover, a
/// deadlock, a lock or statement timeout, exhausted resources); anything else is a
/// bug or a broken invariant: 500.
pub fn query(e: QueryError) -> ApiError {
    match db::classify(&e) {
        db::Failure::Busy => ApiError::unavailable(
            ErrorCode::Busy.as_str(),
            "another request is working on this room; retry shortly",
        ),
        db::Failure::Unavailable => {
            tracing::error!(error = %e, "database unavailable");
            ApiError::unavailable(
                ErrorCode::DatabaseUnavailable.as_str(),
                "the database is unavailable; retry later",
            )
        }
        db::Failure::Permanent => {
            tracing::error!(error = %e, "database query failed");
            ApiError::internal()
        }
    }
}

/// The constraint a failed statement violated, if any (of any kind).
pub fn violated_constraint(e: &QueryError) -> Option<&str> {
    match e {
        QueryError::DatabaseError(_, info) => info.constraint_name(),
        _ => None,
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
            ErrorCode::WherebyThrottled.as_str(),
            "Whereby is rate limiting meeting creation; retry later",
        ),
        WherebyError::Unavailable(reason) => ApiError::bad_gateway(
            ErrorCode::WherebyUnavailable.as_str(),
            format!("Whereby did not answer successfully ({reason})"),
        ),
        WherebyError::Refused { status, .. } => ApiError::bad_gateway(
            ErrorCode::WherebyRefused.as_str(),
            format!("Whereby refused our request (HTTP {status}); check the API key and plan"),
        ),
        WherebyError::Rejected { status, message } => ApiError::bad_gateway(
            ErrorCode::WherebyRejected.as_str(),
            format!("Whereby rejected the request (HTTP {status}): {message}"),
        ),
        WherebyError::NotFound => ApiError::bad_gateway(
            ErrorCode::WherebyNotFound.as_str(),
            "Whereby does not know this meeting",
        ),
        WherebyError::InvalidRequest(reason) => {
            tracing::error!(%reason, "refused to send a request to Whereby");
            ApiError::internal()
        }
        WherebyError::InvalidResponse(_) => ApiError::bad_gateway(
            ErrorCode::WherebyInvalidResponse.as_str(),
            "Whereby answered with an unexpected response",
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::ErrorCode;

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The string literal at the start of `rest` (after blanks), if any.
    fn literal(rest: &str) -> Option<&str> {
        let rest = rest.trim_start().strip_prefix('"')?;
        rest.split('"')
            .next()
            .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    }

    /// The text without `#[cfg(test)]` items, which quote codes as data (braces
    /// counted naively: enough for this code base).
    fn without_tests(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("#[cfg(test)]") {
            out.push_str(&rest[..at]);
            let item = &rest[at..];
            let Some(open) = item.find('{') else {
                return out;
            };
            let mut depth = 0usize;
            let mut end = item.len();
            for (i, c) in item[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &item[end..];
        }
        out.push_str(rest);
        out
    }

    /// Every code literal given to an `ApiError` constructor: `new(status, "code"`,
    /// and the constructors whose first argument is the code.
    fn codes_in(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (at, _) in text.match_indices("new(") {
            let args = text[at + 4..].trim_start();
            let args = args.strip_prefix("actix_web::http::").unwrap_or(args);
            if args.starts_with("StatusCode::")
                && let Some(comma) = args.find(',')
                && let Some(code) = literal(&args[comma + 1..])
            {
                found.push(code.to_owned());
            }
        }
        for ctor in ["bad_request(", "conflict(", "unavailable(", "bad_gateway("] {
            for (at, _) in text.match_indices(ctor) {
                if let Some(code) = literal(&text[at + ctor.len()..]) {
                    found.push(code.to_owned());
                }
            }
        }
        found
    }

    #[test]
    fn every_code_the_code_emits_is_in_the_enum_and_every_variant_is_used() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        sources(&root.join("../../crates/web-common/src"), &mut files);
        let texts: Vec<String> = files
            .iter()
            .map(|f| without_tests(&std::fs::read_to_string(f).expect("read source")))
            .collect();
        let known: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let emitted: Vec<String> = texts.iter().flat_map(|t| codes_in(t)).collect();
        for must in [
            "validation_failed",
            "unauthorized",
            "not_found",
            "invalid_json",
        ] {
            assert!(emitted.iter().any(|c| c == must), "the scan misses {must}");
        }
        for code in &emitted {
            assert!(
                known.contains(&code.as_str()),
                "code `{code}` is emitted but missing from ErrorCode"
            );
        }
        // No stale entries: each variant is named in the code, or its literal is.
        let all = texts.concat();
        for code in ErrorCode::ALL {
            let variant = format!("ErrorCode::{code:?}");
            let used_elsewhere = all.contains(&variant);
            assert!(
                used_elsewhere || emitted.iter().any(|c| c == code.as_str()),
                "ErrorCode::{code:?} is never emitted"
            );
        }
    }
}
