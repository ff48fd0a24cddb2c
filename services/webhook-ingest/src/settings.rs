use serde::Deserialize;
use settings::{AmqpSettings, Checks, LogSettings, SettingsError, Source};

/// Everything webhook-ingest reads; see docs/configuration.md.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub http: HttpSettings,
    pub webhook: WebhookSettings,
    pub amqp: AmqpSettings,
    pub log: LogSettings,
}

impl IngestSettings {
    /// Every key webhook-ingest reads, for `--help` (from the sections themselves).
    pub fn keys() -> Vec<String> {
        use settings::keys_of;
        [
            keys_of::<HttpSettings>(),
            keys_of::<WebhookSettings>(),
            keys_of::<AmqpSettings>(),
            keys_of::<LogSettings>(),
        ]
        .concat()
    }

    pub fn load() -> Result<Self, SettingsError> {
        Self::from_source(&Source::load()?)
    }

    pub fn from_source(source: &Source) -> Result<Self, SettingsError> {
        let mut reader = source.reader();
        let settings = Self {
            http: reader.section()?,
            webhook: reader.section()?,
            amqp: reader.section()?,
            log: reader.section()?,
        };
        reader.check(settings.amqp.check());
        reader.check(settings.check_own());
        reader.finish()?;
        Ok(settings)
    }

    /// The checks of ingest's own settings.
    fn check_own(&self) -> Result<(), SettingsError> {
        let mut checks = Checks::default();
        let http = &self.http;
        checks.require(
            http.webhook_body_budget_bytes * 3 / 4 >= http.webhook_body_limit_bytes,
            "WEBHOOK_BODY_BUDGET_BYTES",
            format!(
                "({}) must hold at least one body of WEBHOOK_BODY_LIMIT_BYTES ({}) in its three quarters for large bodies",
                http.webhook_body_budget_bytes, http.webhook_body_limit_bytes
            ),
        );
        checks.range(
            "WEBHOOK_BODY_TIMEOUT_SECONDS",
            http.webhook_body_timeout_seconds,
            1..=120,
        );
        checks.range(
            "WEBHOOK_FAILURE_BURST",
            u64::from(http.webhook_failure_burst),
            1..=100_000,
        );
        checks.require(
            (0.01..=10_000.0).contains(&http.webhook_failure_rate_per_second),
            "WEBHOOK_FAILURE_RATE_PER_SECOND",
            "must be between 0.01 and 10000",
        );
        checks.range(
            "WEBHOOK_TRUSTED_PROXY_HOPS",
            http.webhook_trusted_proxy_hops as u64,
            1..=10,
        );
        checks.require(
            (1..=3600).contains(&self.webhook.whereby_webhook_tolerance_seconds),
            "WHEREBY_WEBHOOK_TOLERANCE_SECONDS",
            "must be between 1 and 3600",
        );
        checks.require(
            !self.webhook.whereby_webhook_secret.is_empty(),
            "WHEREBY_WEBHOOK_SECRET",
            "must hold at least one secret",
        );
        checks.done()
    }
}

fn default_addr() -> String {
    "0.0.0.0:8081".to_owned()
}
const fn default_body_limit() -> usize {
    256 * 1024
}
const fn default_shutdown() -> u64 {
    25
}
const fn default_in_flight() -> usize {
    2048
}
const fn default_body_budget() -> usize {
    16 * 1024 * 1024
}
const fn default_body_timeout() -> u64 {
    10
}

/// Bodies up to this size (every real Whereby event) draw from a reserve that
/// larger bodies cannot exhaust.
pub const SMALL_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    #[serde(default = "default_addr")]
    pub webhook_ingest_addr: String,
    #[serde(default)]
    pub webhook_ingest_workers: Option<usize>,
    /// Whereby's events are a few KiB; anything far larger is refused with 413.
    #[serde(default = "default_body_limit")]
    pub webhook_body_limit_bytes: usize,
    #[serde(default = "default_shutdown")]
    pub webhook_ingest_shutdown_seconds: u64,
    /// Webhooks being verified and published at once; beyond it, 503 (never 429:
    /// Whereby retries only on 5xx).
    #[serde(default = "default_in_flight")]
    pub webhook_max_in_flight: usize,
    /// Bytes of request bodies held in memory at once, across all requests;
    /// beyond it, 503. With the container's memory limit in mind (128 MiB in k8s/).
    #[serde(default = "default_body_budget")]
    pub webhook_body_budget_bytes: usize,
    /// A body must arrive within this many seconds of its headers; else 408.
    #[serde(default = "default_body_timeout")]
    pub webhook_body_timeout_seconds: u64,
    /// Failed verifications a client address may have in a burst before its
    /// failures are answered 429 (correctly signed events are never limited).
    #[serde(default = "default_failure_burst")]
    pub webhook_failure_burst: u32,
    /// Failed verifications per second an address regains.
    #[serde(default = "default_failure_rate")]
    pub webhook_failure_rate_per_second: f64,
    /// The header a trusted proxy puts the client's address in (for example
    /// `X-Forwarded-For`); unset: the peer address.
    #[serde(default)]
    pub webhook_client_address_header: Option<String>,
    /// How many trusted proxies append to that header: the address is this many
    /// entries from the right (a client can forge anything to the left).
    #[serde(default = "default_hops")]
    pub webhook_trusted_proxy_hops: usize,
}

const fn default_failure_burst() -> u32 {
    20
}
const fn default_failure_rate() -> f64 {
    1.0
}
const fn default_hops() -> usize {
    1
}
/// Client addresses the failure limiter tracks at most (a few MiB).
pub const LIMITER_CAPACITY: usize = 50_000;

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            webhook_ingest_addr: default_addr(),
            webhook_ingest_workers: None,
            webhook_body_limit_bytes: default_body_limit(),
            webhook_ingest_shutdown_seconds: default_shutdown(),
            webhook_max_in_flight: default_in_flight(),
            webhook_body_budget_bytes: default_body_budget(),
            webhook_body_timeout_seconds: default_body_timeout(),
            webhook_failure_burst: default_failure_burst(),
            webhook_failure_rate_per_second: default_failure_rate(),
            webhook_client_address_header: None,
            webhook_trusted_proxy_hops: default_hops(),
        }
    }
}

impl HttpSettings {
    /// The failure limiter's settings.
    pub fn failure_limit(&self) -> crate::limiter::LimitSettings {
        crate::limiter::LimitSettings {
            burst: self.webhook_failure_burst,
            per_second: self.webhook_failure_rate_per_second,
            capacity: LIMITER_CAPACITY,
        }
    }

    /// The byte budget: a quarter is kept for bodies of at most
    /// [`SMALL_BODY_BYTES`].
    pub fn body_budget(&self) -> web_common::ByteBudget {
        let total = self.webhook_body_budget_bytes;
        web_common::ByteBudget::new(total, total / 4, SMALL_BODY_BYTES)
    }
}

const fn default_tolerance() -> i64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// One or more signing secrets, comma-separated: during a rotation both the
    /// new and the old secret verify.
    #[serde(deserialize_with = "settings::secret_list")]
    pub whereby_webhook_secret: Vec<secrecy::SecretString>,
    /// How far a signature's timestamp may be from our clock, either way.
    #[serde(default = "default_tolerance")]
    pub whereby_webhook_tolerance_seconds: i64,
}
