//! RabbitMQ through lapin: the topology (declared idempotently from code), the
//! typed envelope, connecting with a timeout, and a publisher with confirms that a
//! supervisor keeps connected. docs/messages.md describes the contract.

mod envelope;
mod messages;
mod publisher;
mod topology;

use std::time::Duration;

pub use envelope::{
    HEADER_ATTEMPT, HEADER_EVENT_TYPE, HEADER_REPLAYS, HEADER_REQUEST_ID, RecordingReady,
    SCHEMA_VERSION, WebhookEnvelope, header_str, header_u32,
};
pub use lapin;
pub use messages::{replay_properties, webhook_properties};
pub use publisher::{
    FAILURES_BEFORE_RECONNECT, PublishError, Publisher, PublisherMetrics, STALL_BEFORE_RECONNECT,
};
pub use topology::{Topology, TopologySettings, routing_key_for};

use lapin::{Connection, ConnectionProperties};

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("cannot connect to RabbitMQ: {0}")]
    Connect(String),
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
}

/// The broker's endpoints: `AMQP_URL` may list several nodes of one cluster,
/// comma-separated. A connection goes to the first that answers; after a loss the
/// next connection starts from the node after the one that was lost, so a dead
/// node is not tried first again.
#[derive(Debug)]
pub struct Endpoints {
    urls: Vec<String>,
    next: std::sync::atomic::AtomicUsize,
}

impl Endpoints {
    /// Parses a comma-separated list (empty entries are ignored). The first
    /// connection tries them from a random one on, so that the replicas of a
    /// service, all given the same list, spread over the nodes: a node that hangs
    /// then stalls some replicas, not all.
    pub fn parse(list: &str) -> Self {
        use std::hash::{BuildHasher, RandomState};
        let urls: Vec<String> = settings::split_amqp_urls(list).map(str::to_owned).collect();
        let random = RandomState::new().hash_one(std::process::id());
        let start = usize::try_from(random % urls.len().max(1) as u64).unwrap_or(0);
        Self {
            urls,
            next: std::sync::atomic::AtomicUsize::new(start),
        }
    }

    /// The same list, tried in the order given (for tests that need to know).
    #[cfg(test)]
    fn in_order(list: &str) -> Self {
        let endpoints = Self::parse(list);
        endpoints
            .next
            .store(0, std::sync::atomic::Ordering::Relaxed);
        endpoints
    }

    /// How many endpoints are listed.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Connects to the first endpoint that answers, each tried once within
    /// `timeout`, starting after the one last connected to.
    pub async fn connect(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Connection, MessagingError> {
        use std::sync::atomic::Ordering;
        let n = self.urls.len();
        if n == 0 {
            return Err(MessagingError::Connect("no AMQP_URL".to_owned()));
        }
        let start = self.next.load(Ordering::Relaxed) % n;
        let mut failures = Vec::new();
        for i in 0..n {
            let index = (start + i) % n;
            let Some(url) = self.urls.get(index) else {
                continue;
            };
            match connect_one(url, name, timeout).await {
                Ok(conn) => {
                    self.next.store((index + 1) % n, Ordering::Relaxed);
                    if n > 1 {
                        tracing::info!(
                            endpoint = index + 1,
                            of = n,
                            "connected to a RabbitMQ node"
                        );
                    }
                    return Ok(conn);
                }
                Err(e) if n == 1 => return Err(e),
                Err(e) => failures.push(format!("endpoint {}: {e}", index + 1)),
            }
        }
        Err(MessagingError::Connect(failures.join("; ")))
    }
}

/// Connects to the first of the comma-separated `urls` that answers (see
/// [`Endpoints`]; long-lived connections keep an `Endpoints` to rotate on loss).
pub async fn connect(
    urls: &str,
    name: &str,
    timeout: Duration,
) -> Result<Connection, MessagingError> {
    Endpoints::parse(urls).connect(name, timeout).await
}

/// Opens a connection to one node within `timeout`. The URL may carry
/// `heartbeat=N`; without one we ask for 10 s, so that a dead peer is noticed in
/// seconds, not minutes.
async fn connect_one(
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
        // Whatever lapin's text says (a malformed URL may be quoted whole), the
        // password never leaves this function.
        Ok(Err(e)) => Err(MessagingError::Connect(redact_password(
            &e.to_string(),
            &url,
        ))),
        Err(_) => Err(MessagingError::Connect("timed out".to_owned())),
    }
}

/// Closes a connection, waiting at most a second for the broker's close-ok: a
/// connection to a node that died (killed, partitioned) would never get one, and
/// the caller is usually on its way to reconnect elsewhere.
pub async fn close_quietly(conn: &Connection) {
    if conn.status().connected() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close(200, "bye".into())).await;
    }
}

/// The longest wait for a broker's close-ok (and for a cancel-ok).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// `text` with the URL's password (the userinfo after the first `:`), raw or
/// percent-decoded, replaced by `***`.
pub fn redact_password(text: &str, url: &str) -> String {
    let userinfo = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .rsplit_once('@')
        .map(|(userinfo, _)| userinfo);
    let Some((_, password)) = userinfo.and_then(|u| u.split_once(':')) else {
        return text.to_owned();
    };
    if password.is_empty() {
        return text.to_owned();
    }
    let mut out = text.replace(password, "***");
    let decoded = percent_decode(password);
    if !decoded.is_empty() {
        out = out.replace(&decoded, "***");
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_url_never_prints_its_password() {
        for url in [
            "amqp://guest:s3cr%2Ft-pw@[::1:5672/%2f",
            "amqp://guest:s3cr%2Ft-pw@host:notaport/%2f",
            "amqp://guest:s3cr%2Ft-pw@",
            "nonsense://guest:s3cr%2Ft-pw@host",
        ] {
            let Err(e) = connect(url, "test", Duration::from_secs(2)).await else {
                panic!("connected to {url}?");
            };
            let text = e.to_string();
            assert!(
                !text.contains("s3cr%2Ft-pw") && !text.contains("s3cr/t-pw"),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn the_first_endpoint_that_answers_is_used_and_a_loss_moves_to_the_next() {
        let live = std::env::var("TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        // A port nothing listens on, then the broker, twice.
        let dead = "amqp://guest:guest@127.0.0.1:1/%2f";
        let endpoints = Endpoints::in_order(&format!("{dead}, {live},{live},"));
        assert_eq!(endpoints.len(), 3);
        let first = endpoints
            .connect("test", Duration::from_secs(2))
            .await
            .expect("the second endpoint answers");
        assert_eq!(endpoints.next.load(std::sync::atomic::Ordering::Relaxed), 2);
        // The next connection (after a loss) starts at the third endpoint.
        let second = endpoints
            .connect("test", Duration::from_secs(2))
            .await
            .expect("third");
        assert_eq!(endpoints.next.load(std::sync::atomic::Ordering::Relaxed), 0);
        let _ = first.close(200, "bye".into()).await;
        let _ = second.close(200, "bye".into()).await;

        let Err(e) = connect(&format!("{dead},{dead}"), "test", Duration::from_secs(2)).await
        else {
            panic!("nothing answers");
        };
        let text = e.to_string();
        assert!(
            text.contains("endpoint 1") && text.contains("endpoint 2"),
            "{text}"
        );
        assert!(!text.contains("guest:guest"), "{text}");
    }

    #[test]
    fn redaction_covers_the_raw_and_the_decoded_password() {
        let url = "amqp://user:p%40ss@host/";
        assert_eq!(
            redact_password("bad url amqp://user:p%40ss@host/ p@ss", url),
            "bad url amqp://user:***@host/ ***"
        );
        assert_eq!(redact_password("no secret", "amqp://host/"), "no secret");
    }
}
