//! RabbitMQ through lapin: the topology (declared idempotently from code), the
//! typed envelope, connecting with a timeout, and a publisher with confirms that a
//! supervisor keeps connected. docs/messages.md describes the contract.

mod envelope;
mod publisher;
mod topology;

use std::time::Duration;

pub use envelope::{
    HEADER_ATTEMPT, HEADER_EVENT_TYPE, HEADER_REQUEST_ID, RecordingReady, SCHEMA_VERSION,
    WebhookEnvelope, header_str, header_u32,
};
pub use lapin;
pub use publisher::{PublishError, Publisher, PublisherMetrics};
pub use topology::{Topology, TopologySettings, routing_key_for};

use lapin::{Connection, ConnectionProperties};

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("cannot connect to RabbitMQ: {0}")]
    Connect(String),
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
}

/// Opens a connection within `timeout`. The URL may carry `heartbeat=N`; without
/// one we ask for 10 s, so that a dead peer is noticed in seconds, not minutes.
pub async fn connect(
    url: &str,
    name: &str,
    timeout: Duration,
) -> Result<Connection, MessagingError> {
    let url = if url.contains("heartbeat=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&heartbeat=10")
    } else {
        format!("{url}?heartbeat=10")
    };
    let props = ConnectionProperties::default().with_connection_name(name.into());
    match tokio::time::timeout(timeout, Connection::connect(&url, props)).await {
        Ok(Ok(conn)) => Ok(conn),
        // lapin's error text names the host, never the password.
        Ok(Err(e)) => Err(MessagingError::Connect(e.to_string())),
        Err(_) => Err(MessagingError::Connect("timed out".to_owned())),
    }
}

/// Full-jitter exponential backoff for reconnect loops: attempt 1 waits up to
/// 250 ms, doubling to at most `cap`.
pub fn backoff(attempt: u32, cap: Duration) -> Duration {
    let ceiling = Duration::from_millis(250)
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(cap);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
}
