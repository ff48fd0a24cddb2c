//! Settings for a service under test, given the way a deployment gives them: as
//! environment variables, read by the service's own loader. A setting with a
//! default needs nothing here; one without is added once, in [`TestEnv::new`] or
//! by the fixture it belongs to ([`TestEnv::database`], [`TestEnv::broker`]).

use std::collections::HashMap;

use settings::{SettingsError, Source};

use crate::{TestBroker, TestDatabase};

/// An environment for one service, built up by fixtures and tests.
#[derive(Debug, Clone)]
pub struct TestEnv(HashMap<String, String>);

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// Logs in the readable format; S3 and SQS on the emulator; every listener on
    /// a port of the system's choosing.
    pub fn new() -> Self {
        let env = Self(HashMap::new())
            .set("LOG_FORMAT", "pretty")
            .set("LOG_LEVEL", "info")
            .set("AWS_ENDPOINT_URL", crate::aws::endpoint())
            .set("AWS_REGION", "us-east-1")
            .set("AWS_ACCESS_KEY_ID", "test")
            .set("AWS_SECRET_ACCESS_KEY", "test");
        ["ROOM_API_ADDR", "WEBHOOK_INGEST_ADDR", "WORKER_ADDR"]
            .into_iter()
            .fold(env, |env, key| env.set(key, "127.0.0.1:0"))
    }

    /// Sets `key` (the variable's name) to `value`.
    #[must_use]
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// The test's database, already migrated (cloned from the template).
    #[must_use]
    pub fn database(self, db: &TestDatabase) -> Self {
        self.database_url(&db.url)
    }

    /// A database at `url` (a private server's, say), already migrated.
    #[must_use]
    pub fn database_url(self, url: &str) -> Self {
        self.set("DATABASE_URL", url)
            .set("DATABASE_MIGRATE_ON_START", "false")
            .set("DATABASE_POOL_SIZE", "4")
            .set("DATABASE_TIMEOUT_SECONDS", "5")
    }

    /// The test's broker topology (its prefix and short retry delays).
    #[must_use]
    pub fn broker(self, broker: &TestBroker) -> Self {
        let t = &broker.topology.settings;
        let delays = t
            .retry_delays
            .iter()
            .map(|d| d.as_millis().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let env = self
            .set("AMQP_URL", broker.url.clone())
            .set("AMQP_PREFIX", t.prefix.clone())
            .set("AMQP_DELIVERY_LIMIT", t.delivery_limit.to_string())
            .set("AMQP_RETRY_DELAYS_MS", delays)
            .set("AMQP_MAX_LENGTH", t.max_length.to_string());
        match t.quorum_initial_group_size {
            Some(size) => env.set("AMQP_QUORUM_INITIAL_GROUP_SIZE", size.to_string()),
            None => env,
        }
    }

    /// The source a service's loader reads (no `.env`, nothing from this process's
    /// own environment).
    pub fn source(&self) -> Source {
        Source::from_parts(None, self.0.clone()).expect("a test environment is a valid source")
    }

    /// One section of settings, read as the service reads it.
    pub fn section<T: serde::de::DeserializeOwned>(&self) -> Result<T, SettingsError> {
        self.source().section()
    }
}
