use serde::Deserialize;
use settings::{AmqpSettings, DatabaseSettings, LogSettings, SettingsError, Source};

/// Everything recording-worker reads; see docs/configuration.md.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub worker: WorkerSection,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub log: LogSettings,
}

impl WorkerSettings {
    pub fn load() -> Result<Self, SettingsError> {
        let source = Source::load()?;
        Ok(Self {
            worker: source.section()?,
            database: source.section()?,
            amqp: source.section()?,
            log: source.section()?,
        })
    }
}

fn default_addr() -> String {
    "0.0.0.0:8082".to_owned()
}
const fn default_prefetch() -> u16 {
    32
}
const fn default_shutdown() -> u64 {
    20
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSection {
    /// `WORKER_ADDR`: health and metrics.
    #[serde(default = "default_addr")]
    pub worker_addr: String,
    /// `WORKER_PREFETCH`: unacknowledged deliveries the broker sends ahead.
    #[serde(default = "default_prefetch")]
    pub worker_prefetch: u16,
    /// `WORKER_SHUTDOWN_SECONDS`: on SIGTERM, time to finish what is in hand.
    #[serde(default = "default_shutdown")]
    pub worker_shutdown_seconds: u64,
}
