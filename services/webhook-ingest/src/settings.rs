use secrecy::ExposeSecret;
use serde::Deserialize;
use settings::{AmqpSettings, LogSettings, SettingsError, Source};

/// Everything webhook-ingest reads; see docs/configuration.md.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub http: HttpSettings,
    pub webhook: WebhookSettings,
    pub amqp: AmqpSettings,
    pub log: LogSettings,
}

impl IngestSettings {
    pub fn load() -> Result<Self, SettingsError> {
        Self::from_source(&Source::load()?)
    }

    pub fn from_source(source: &Source) -> Result<Self, SettingsError> {
        let settings = Self {
            http: source.section()?,
            webhook: source.section()?,
            amqp: source.section()?,
            log: source.section()?,
        };
        if settings.webhook.secrets().is_empty() {
            return Err(SettingsError::Invalid(
                "WHEREBY_WEBHOOK_SECRET must hold at least one secret".to_owned(),
            ));
        }
        Ok(settings)
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
}

const fn default_tolerance() -> i64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// One or more signing secrets, comma-separated: during a rotation both the
    /// new and the old secret verify.
    pub whereby_webhook_secret: secrecy::SecretString,
    /// How far a signature's timestamp may be from our clock, either way.
    #[serde(default = "default_tolerance")]
    pub whereby_webhook_tolerance_seconds: i64,
}

impl WebhookSettings {
    pub fn secrets(&self) -> Vec<Vec<u8>> {
        self.whereby_webhook_secret
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect()
    }
}
