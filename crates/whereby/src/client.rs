use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};

use crate::{CreateMeeting, Meeting};

/// How a call is retried: 429 waits out `Retry-After` (up to a cap), 5xx and
/// connection failures back off exponentially with jitter; other 4xx never retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this fails the call as throttled at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Full jitter over an exponential ceiling: `attempt` 1 waits up to `base`.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WherebyError {
    /// 429 that we did not (or could no longer) wait out.
    #[error("Whereby is throttling our requests")]
    Throttled { retry_after: Option<Duration> },
    /// 5xx, timeouts or connection failures, after every attempt.
    #[error("Whereby is unavailable: {0}")]
    Unavailable(String),
    /// Whereby rejected our API key (401) or the action (403).
    #[error("Whereby refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// Any other 4xx: a request Whereby considers wrong. Status and body are kept.
    #[error("Whereby rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("Whereby has no such meeting")]
    NotFound,
    /// A 2xx whose body is not what the spec promises.
    #[error("unexpected response from Whereby: {0}")]
    InvalidResponse(String),
    /// A request we refuse to send (a room name that is not one path segment).
    #[error("not a request Whereby can take: {0}")]
    InvalidRequest(String),
}

impl WherebyError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Throttled { .. } => "throttled",
            Self::Unavailable(_) => "unavailable",
            Self::Refused { .. } => "refused",
            Self::Rejected { .. } => "rejected",
            Self::NotFound => "not_found",
            Self::InvalidResponse(_) => "invalid_response",
            Self::InvalidRequest(_) => "invalid_request",
        }
    }
}

/// Calls to Whereby by operation and outcome, and their latency (all attempts).
#[derive(Clone)]
pub struct WherebyMetrics {
    calls: IntCounterVec,
    duration: HistogramVec,
}

impl WherebyMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let calls = IntCounterVec::new(
            Opts::new(
                "whereby_api_calls_total",
                "Calls to the Whereby REST API by operation and outcome",
            ),
            &["operation", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "whereby_api_call_duration_seconds",
                "Latency of Whereby REST API calls, retries included",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["operation"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { calls, duration })
    }
}

#[derive(Clone)]
pub struct WherebyClient {
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    retry: RetryPolicy,
    metrics: Option<WherebyMetrics>,
    timeout: Duration,
}

impl std::fmt::Debug for WherebyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WherebyClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Outcome of one HTTP attempt.
enum Attempt {
    Done(reqwest::Response),
    Retry {
        error: WherebyError,
        wait: Option<Duration>,
    },
    Fail(WherebyError),
}

impl WherebyClient {
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        timeout: Duration,
        retry: RetryPolicy,
        metrics: Option<WherebyMetrics>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            // A redirect from an API is not followed blindly (OWASP API10).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("whereby-integration/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            retry,
            metrics,
            timeout,
        })
    }

    /// The longest one call can take, every attempt and wait included: what a
    /// caller holding a claim or a deadline around a call must allow for.
    pub fn longest_call(&self) -> Duration {
        let attempts = self.retry.max_attempts.max(1);
        let wait = self.retry.max_delay.max(self.retry.max_retry_after);
        self.timeout
            .saturating_mul(attempts)
            .saturating_add(wait.saturating_mul(attempts - 1))
    }

    /// The client the services build from `WHEREBY_*` settings.
    pub fn from_settings(
        w: &settings::WherebySettings,
        metrics: Option<WherebyMetrics>,
    ) -> Result<Self, reqwest::Error> {
        Self::new(
            &w.whereby_api_url,
            w.whereby_api_key.clone(),
            Duration::from_secs(w.whereby_timeout_seconds),
            RetryPolicy {
                max_attempts: w.whereby_max_attempts.max(1),
                max_retry_after: Duration::from_secs(w.whereby_max_retry_after_seconds),
                ..RetryPolicy::default()
            },
            metrics,
        )
    }

    /// `POST /meetings`. Note that a retried POST after a timeout may leave an
    /// extra meeting at Whereby; it expires by itself one hour after `endDate`.
    pub async fn create_meeting(&self, body: &CreateMeeting) -> Result<Meeting, WherebyError> {
        let res = self
            .call(
                "create_meeting",
                Method::POST,
                "/meetings",
                Some(&RequestBody::json(body)?),
            )
            .await?;
        parse(res).await
    }

    /// `GET /meetings/{id}` with the host URL.
    pub async fn get_meeting(&self, meeting_id: &str) -> Result<Meeting, WherebyError> {
        let path = format!("/meetings/{}?fields=hostRoomUrl", encode(meeting_id));
        let res = self.call("get_meeting", Method::GET, &path, None).await?;
        parse(res).await
    }

    /// `GET /meetings?limit=1`: the cheapest authenticated call, to check the key.
    pub async fn check_access(&self) -> Result<(), WherebyError> {
        self.call("list_meetings", Method::GET, "/meetings?limit=1", None)
            .await
            .map(drop)
    }

    /// `DELETE /meetings/{id}`: idempotent at Whereby (204 for unknown ids too).
    pub async fn delete_meeting(&self, meeting_id: &str) -> Result<(), WherebyError> {
        let path = format!("/meetings/{}", encode(meeting_id));
        match self
            .call("delete_meeting", Method::DELETE, &path, None)
            .await
        {
            Ok(_) | Err(WherebyError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `PUT /rooms/{roomName}/theme/tokens`: the room's colours, or Whereby's
    /// defaults (`None`).
    pub async fn set_theme_colors(
        &self,
        room_name: &str,
        colors: Option<&ThemeColors>,
    ) -> Result<(), WherebyError> {
        let body = match colors {
            Some(c) => serde_json::json!({"tokens": {"colors": c}, "tokensPreset": "custom"}),
            None => serde_json::json!({"tokensPreset": "default"}),
        };
        let path = format!("/rooms/{}/theme/tokens", room_segment(room_name)?);
        self.call(
            "set_theme_tokens",
            Method::PUT,
            &path,
            Some(&RequestBody::json(&body)?),
        )
        .await
        .map(drop)
    }

    /// `PUT /rooms/{roomName}/theme/logo`: an image (multipart `image`), or the
    /// default logo (`None`).
    pub async fn set_theme_logo(
        &self,
        room_name: &str,
        image: Option<&ThemeImage>,
    ) -> Result<(), WherebyError> {
        let body = match image {
            Some(i) => RequestBody::multipart_image(i),
            None => RequestBody::json(&serde_json::json!({"theme": "default"}))?,
        };
        let path = format!("/rooms/{}/theme/logo", room_segment(room_name)?);
        self.call("set_theme_logo", Method::PUT, &path, Some(&body))
            .await
            .map(drop)
    }

    /// `PUT /rooms/{roomName}/theme/room-background`: an image, or one of
    /// Whereby's presets.
    pub async fn set_theme_background(
        &self,
        room_name: &str,
        background: &ThemeBackground,
    ) -> Result<(), WherebyError> {
        let body = match background {
            ThemeBackground::Image(i) => RequestBody::multipart_image(i),
            ThemeBackground::Preset { palette, theme } => {
                RequestBody::json(&serde_json::json!({"palette": palette, "theme": theme}))?
            }
        };
        let path = format!("/rooms/{}/theme/room-background", room_segment(room_name)?);
        self.call("set_theme_background", Method::PUT, &path, Some(&body))
            .await
            .map(drop)
    }

    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        body: Option<&RequestBody>,
    ) -> Result<reqwest::Response, WherebyError> {
        let started = Instant::now();
        let result = self.call_with_retries(method, path, body).await;
        if let Some(m) = &self.metrics {
            let outcome = result.as_ref().map_or_else(WherebyError::outcome, |_| "ok");
            m.calls.with_label_values(&[operation, outcome]).inc();
            m.duration
                .with_label_values(&[operation])
                .observe(started.elapsed().as_secs_f64());
        }
        if let Err(e) = &result {
            tracing::warn!(operation, error = %e, "Whereby call failed");
        }
        result
    }

    async fn call_with_retries(
        &self,
        method: Method,
        path: &str,
        body: Option<&RequestBody>,
    ) -> Result<reqwest::Response, WherebyError> {
        let url = format!("{}{}", self.base_url, path);
        let mut attempt = 1;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.api_key.expose_secret())
                .header(header::ACCEPT, "application/json");
            if let Some(body) = body {
                req = req
                    .header(header::CONTENT_TYPE, body.content_type.as_str())
                    .body(body.bytes.clone());
            }
            let outcome = match req.send().await {
                Ok(res) => self.classify(res).await,
                Err(e) => Attempt::Retry {
                    // reqwest errors carry the URL, never the headers.
                    error: WherebyError::Unavailable(describe(&e)),
                    wait: None,
                },
            };
            match outcome {
                Attempt::Done(res) => return Ok(res),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { error, wait } => {
                    if attempt >= self.retry.max_attempts {
                        return Err(error);
                    }
                    let wait = wait.unwrap_or_else(|| self.retry.backoff(attempt));
                    tracing::info!(attempt, wait_ms = wait.as_millis() as u64, error = %error, "retrying Whereby call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn classify(&self, res: reqwest::Response) -> Attempt {
        let status = res.status();
        if status.is_success() {
            return Attempt::Done(res);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = retry_after(res.headers());
            return match retry_after {
                Some(wait) if wait <= self.retry.max_retry_after => Attempt::Retry {
                    error: WherebyError::Throttled {
                        retry_after: Some(wait),
                    },
                    wait: Some(wait),
                },
                Some(wait) => Attempt::Fail(WherebyError::Throttled {
                    retry_after: Some(wait),
                }),
                None => Attempt::Retry {
                    error: WherebyError::Throttled { retry_after: None },
                    wait: None,
                },
            };
        }
        if status.is_server_error() {
            return Attempt::Retry {
                error: WherebyError::Unavailable(format!("HTTP {}", status.as_u16())),
                wait: None,
            };
        }
        let message = error_message(res).await;
        Attempt::Fail(match status {
            StatusCode::NOT_FOUND => WherebyError::NotFound,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => WherebyError::Refused {
                status: status.as_u16(),
                message,
            },
            _ => WherebyError::Rejected {
                status: status.as_u16(),
                message,
            },
        })
    }
}

async fn parse(res: reqwest::Response) -> Result<Meeting, WherebyError> {
    let bytes = res
        .bytes()
        .await
        .map_err(|e| WherebyError::Unavailable(describe(&e)))?;
    serde_json::from_slice(&bytes).map_err(|e| WherebyError::InvalidResponse(e.to_string()))
}

/// Whereby's error text: `{"error": "..."}` when present, else the body, bounded.
async fn error_message(res: reqwest::Response) -> String {
    let text = res.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or(text);
    message.chars().take(500).collect()
}

/// `Retry-After` in seconds (Whereby's form); HTTP dates are not used by Whereby.
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// Meeting ids are numeric strings; anything else is percent-encoded defensively.
/// A request body: its content type and bytes (kept to send again on a retry).
struct RequestBody {
    content_type: String,
    bytes: Vec<u8>,
}

impl RequestBody {
    fn json<T: serde::Serialize>(value: &T) -> Result<Self, WherebyError> {
        Ok(Self {
            content_type: "application/json".to_owned(),
            bytes: serde_json::to_vec(value).map_err(|e| {
                WherebyError::InvalidRequest(format!("cannot encode the request: {e}"))
            })?,
        })
    }

    /// `multipart/form-data` with one file field `image`, as the theme endpoints take.
    fn multipart_image(image: &ThemeImage) -> Self {
        let boundary = format!(
            "whereby-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let extension = if image.content_type == "image/png" {
            "png"
        } else {
            "jpg"
        };
        let mut bytes = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"image.{extension}\"\r\nContent-Type: {}\r\n\r\n",
            image.content_type
        )
        .into_bytes();
        bytes.extend_from_slice(&image.bytes);
        bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Self {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            bytes,
        }
    }
}

/// Room colours, `#rrggbb` each (validated where they are set).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ThemeColors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focus: Option<String>,
}

/// An image for a logo or a background: PNG or JPEG bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeImage {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A room background: an image, or one of Whereby's presets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThemeBackground {
    Image(ThemeImage),
    Preset { palette: String, theme: String },
}

/// The theme endpoints take the meeting's room name without its leading `/`, as
/// one path segment (`/rooms/prefix-uuid/theme/...`, never `/rooms//prefix-uuid`).
fn room_segment(room_name: &str) -> Result<String, WherebyError> {
    let segment = room_name.strip_prefix('/').unwrap_or(room_name);
    if segment.is_empty() || segment.contains('/') {
        return Err(WherebyError::InvalidRequest(format!(
            "{room_name:?} is not a Whereby room name"
        )));
    }
    Ok(encode(segment))
}

fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            let d = policy.backoff(attempt);
            assert!(d <= policy.max_delay, "{d:?}");
        }
        assert!(policy.backoff(1) >= Duration::from_millis(100));
    }

    #[test]
    fn ids_are_path_safe() {
        assert_eq!(encode("123"), "123");
        assert_eq!(encode("a/b"), "a%2Fb");
    }
}
