use std::{future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpRequest, dev::Payload, http::header, web, web::Bytes, web::BytesMut,
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The largest request body a service accepts, set as app data. Bodies are counted
/// as they stream in, so a chunked body without `Content-Length` is capped too.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        Self(16 * 1024)
    }
}

/// Reads the whole body, failing with 413 as soon as it exceeds `limit`.
pub async fn read_body<S>(payload: &mut S, limit: usize) -> Result<Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request("invalid_body", "the request body could not be read")
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Bytes of request bodies that may be held in memory at once, across all
/// requests of a process: what bounds a pod's memory against many slow or large
/// bodies, whatever the number of connections. Bodies declaring at most
/// `small_body` bytes draw from a reserve that larger ones cannot touch, so a
/// flood of large bodies cannot starve ordinary-sized requests.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    large: std::sync::Arc<tokio::sync::Semaphore>,
    small: std::sync::Arc<tokio::sync::Semaphore>,
    small_body: usize,
}

/// The share of a [`ByteBudget`] one body holds; given back when dropped.
#[derive(Debug)]
pub struct BudgetHold(Vec<tokio::sync::OwnedSemaphorePermit>);

/// A body could not be buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the per-request limit: 413.
    TooLarge,
    /// The process's byte budget is spent: 503, retry.
    OverBudget,
    /// Not received within the deadline: 408.
    TooSlow,
    /// The connection broke or the encoding was invalid: 400.
    Unreadable,
}

impl BodyError {
    /// A short label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::OverBudget => "over_budget",
            Self::TooSlow => "too_slow",
            Self::Unreadable => "unreadable",
        }
    }
}

impl ByteBudget {
    /// `total` bytes, of which `reserve` only for bodies of at most `small_body`.
    pub fn new(total: usize, reserve: usize, small_body: usize) -> Self {
        let reserve = reserve.min(total);
        let cap = tokio::sync::Semaphore::MAX_PERMITS;
        Self {
            large: std::sync::Arc::new(tokio::sync::Semaphore::new((total - reserve).min(cap))),
            small: std::sync::Arc::new(tokio::sync::Semaphore::new(reserve.min(cap))),
            small_body,
        }
    }

    /// Bytes free for large bodies and for small ones.
    pub fn available(&self) -> (usize, usize) {
        (
            self.large.available_permits(),
            self.small.available_permits() + self.large.available_permits(),
        )
    }

    fn take(&self, declared: Option<usize>, hold: &mut BudgetHold, n: usize) -> bool {
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        let lanes: &[&std::sync::Arc<tokio::sync::Semaphore>] = match declared {
            Some(len) if len <= self.small_body => &[&self.small, &self.large],
            _ => &[&self.large],
        };
        for lane in lanes {
            if let Ok(permit) = (*lane).clone().try_acquire_many_owned(n) {
                // At most one permit per lane: merge into the one held already.
                match hold
                    .0
                    .iter_mut()
                    .find(|p| std::sync::Arc::ptr_eq(p.semaphore(), lane))
                {
                    Some(held) => held.merge(permit),
                    None => hold.0.push(permit),
                }
                return true;
            }
        }
        false
    }
}

/// Reads the whole body within `limit` bytes, `deadline` and the process's
/// `budget`: the bytes stay accounted for while the returned hold lives.
pub async fn read_body_budgeted<S>(
    payload: &mut S,
    limit: usize,
    declared: Option<usize>,
    budget: &ByteBudget,
    deadline: std::time::Duration,
) -> Result<(Bytes, BudgetHold), BodyError>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut hold = BudgetHold(Vec::new());
    // A declared length is charged whole, before a byte is read, and buffered in
    // one allocation of that size: the budget counts the memory really held, and
    // a request refused for want of budget has cost nothing.
    if let Some(n) = declared
        && !budget.take(declared, &mut hold, n)
    {
        return Err(BodyError::OverBudget);
    }
    let read = async {
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
            if body.len() + chunk.len() > limit
                || declared.is_some_and(|n| body.len() + chunk.len() > n)
            {
                return Err(BodyError::TooLarge);
            }
            // Without a declared length (chunked), chunk by chunk.
            if declared.is_none() && !budget.take(None, &mut hold, chunk.len()) {
                return Err(BodyError::OverBudget);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body.freeze(), hold))
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(BodyError::TooSlow))
}

/// The 413 for a body over `limit` bytes.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body exceeds {limit} bytes"),
    )
}

/// A JSON body: `Content-Type: application/json`, within the [`BodyLimit`], valid
/// JSON (400 `invalid_json` otherwise), and of the expected shape (422
/// `validation_failed` naming the offending field otherwise, unknown fields
/// included when the type denies them).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<BodyLimit>>()
            .map(|l| *l.get_ref())
            .unwrap_or_default();
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared_len.is_some_and(|len| len > limit.0) {
                return Err(too_large(limit.0));
            }
            if !is_json {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be application/json",
                ));
            }
            let bytes = read_body(&mut payload, limit.0).await?;
            parse_json(&bytes).map(JsonBody)
        })
    }
}

/// Parses JSON into `T`, telling syntax errors (400) from shape errors (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, so that a truncated body is a 400 and not a "missing field".
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {}", e.classify_message()),
        )
    })?;
    deserialize_with_path(value)
}

trait ClassifyMessage {
    fn classify_message(&self) -> &'static str;
}

impl ClassifyMessage for serde_json::Error {
    fn classify_message(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end of input",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Data => "unexpected data",
        }
    }
}

/// Deserialises, naming the failing field by its path (`recording.type`). For an
/// unknown field the path already ends with its name; for a missing one serde
/// names it only in the message, so it is appended here.
fn deserialize_with_path<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (path.as_str(), missing) {
            (".", Some(name)) => name.to_owned(),
            (".", None) => "body".to_owned(),
            (_, Some(name)) => format!("{path}.{name}"),
            (_, None) => path,
        };
        ApiError::validation(field, message)
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn stream(
        chunks: &[&'static [u8]],
    ) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin
    {
        futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn the_byte_budget_bounds_what_bodies_hold_and_keeps_a_reserve_for_small_ones() {
        let budget = ByteBudget::new(100, 40, 10);
        let t = std::time::Duration::from_secs(1);
        // Two large bodies of 30 take the 60 bytes of the large lane.
        let a = read_body_budgeted(&mut stream(&[&[b'a'; 30]]), 50, Some(30), &budget, t).await;
        let b = read_body_budgeted(&mut stream(&[&[b'b'; 30]]), 50, Some(30), &budget, t).await;
        assert!(a.is_ok() && b.is_ok());
        // A third is refused before it is read, although the reserve has room.
        let c = read_body_budgeted(&mut stream(&[&[b'c'; 30]]), 50, Some(30), &budget, t).await;
        assert_eq!(c.err(), Some(BodyError::OverBudget));
        // A small one still gets through, from the reserve.
        let d = read_body_budgeted(&mut stream(&[b"0123456789"]), 50, Some(10), &budget, t).await;
        assert!(d.is_ok());
        // Giving bodies back gives their bytes back.
        drop((a, b, d));
        assert_eq!(budget.available(), (60, 100));
        // A body longer than it declared is refused.
        let e = read_body_budgeted(&mut stream(&[b"0123456789"]), 50, Some(5), &budget, t).await;
        assert_eq!(e.err(), Some(BodyError::TooLarge));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        count: Option<u8>,
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_422_with_the_field() {
        let e = parse_json::<Sample>(b"{\"name\":").expect_err("truncated");
        assert_eq!((e.status().as_u16(), e.code()), (400, "invalid_json"));

        let e = parse_json::<Sample>(b"{\"name\":\"a\",\"count\":300}").expect_err("range");
        assert_eq!(e.status().as_u16(), 422);
        assert!(e.to_string().contains("count") || format!("{e:?}").contains("count"));

        let e = parse_json::<Sample>(b"{\"name\":\"a\",\"colour\":1}").expect_err("unknown");
        assert!(
            format!("{e:?}").contains("field: Some(\"colour\")"),
            "{e:?}"
        );

        let e = parse_json::<Sample>(b"{}").expect_err("missing");
        assert!(format!("{e:?}").contains("field: Some(\"name\")"), "{e:?}");

        let e = parse_json::<Sample>(b"[]").expect_err("not an object");
        assert_eq!(e.status().as_u16(), 422);
    }
}
