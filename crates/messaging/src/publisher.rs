use std::{
    sync::{Arc, RwLock, atomic::Ordering},
    time::{Duration, Instant},
};

use lapin::{
    BasicProperties, Channel, Confirmation, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{Endpoints, MessagingError, Topology, backoff};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to RabbitMQ")]
    NotConnected,
    #[error("RabbitMQ did not confirm in time")]
    Timeout,
    #[error("RabbitMQ refused the message (nack)")]
    Nacked,
    #[error("the message could not be routed to any queue")]
    Unroutable,
    #[error("RabbitMQ channel error: {0}")]
    Channel(#[from] lapin::Error),
}

impl PublishError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotConnected => "not_connected",
            Self::Timeout => "timeout",
            Self::Nacked => "nacked",
            Self::Unroutable => "unroutable",
            Self::Channel(_) => "channel_error",
        }
    }
}

/// Hooks for the owner's metrics: publish-confirm latency and connection state.
pub trait PublisherMetrics: Send + Sync {
    fn confirmed(&self, latency: Duration);
    fn connected(&self, connected: bool);
}

struct Inner {
    endpoints: Endpoints,
    name: String,
    topology: Topology,
    connect_timeout: Duration,
    current: RwLock<Option<(Connection, Channel)>>,
    broken: Notify,
    /// Nacks and confirm timeouts in a row on the current connection.
    failures_in_a_row: std::sync::atomic::AtomicU32,
    /// Set when they pass [`FAILURES_BEFORE_RECONNECT`]: the supervisor then
    /// replaces the connection.
    reconnect: std::sync::atomic::AtomicBool,
    metrics: Option<Arc<dyn PublisherMetrics>>,
}

/// Nacks or confirm timeouts in a row after which the connection is replaced. A
/// channel can keep failing while the broker has recovered: on a cluster, after a
/// quorum queue's leader died, a channel on a surviving node was seen to nack every
/// publish for 40 s and more while a new connection published at once.
pub const FAILURES_BEFORE_RECONNECT: u32 = 20;

/// The longest wait between two connection attempts.
pub const RECONNECT_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// A publisher with confirms on a connection that a supervisor task keeps alive:
/// on any failure it reconnects with backoff and redeclares the topology. Each
/// publish is `mandatory` and waits for its own confirm (pipelined across
/// concurrent callers on one channel).
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl Publisher {
    pub fn new(
        url: &str,
        name: &str,
        topology: Topology,
        connect_timeout: Duration,
        metrics: Option<Arc<dyn PublisherMetrics>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                endpoints: Endpoints::parse(url),
                name: name.to_owned(),
                topology,
                connect_timeout,
                current: RwLock::new(None),
                broken: Notify::new(),
                failures_in_a_row: std::sync::atomic::AtomicU32::new(0),
                reconnect: std::sync::atomic::AtomicBool::new(false),
                metrics,
            }),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// True while a channel is open and the topology declared.
    pub fn is_connected(&self) -> bool {
        self.current_channel().is_some()
    }

    fn current_channel(&self) -> Option<Channel> {
        let guard = self
            .inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard
            .as_ref()
            .filter(|(conn, ch)| conn.status().connected() && ch.status().connected())
            .map(|(_, ch)| ch.clone())
    }

    fn set(&self, value: Option<(Connection, Channel)>) {
        let connected = value.is_some();
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
        if let Some(m) = &self.inner.metrics {
            m.connected(connected);
        }
    }

    async fn open(&self) -> Result<(Connection, Channel), MessagingError> {
        let conn = self
            .inner
            .endpoints
            .connect(&self.inner.name, self.inner.connect_timeout)
            .await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.inner.topology.declare(&conn, &channel).await?;
        Ok((conn, channel))
    }

    /// A work or delay queue at its length bound, as the broker says now; `None`
    /// also when it does not answer within a second (then the connection is the
    /// suspect). Nacks carry no reason: this tells a full queue's refusals from a
    /// channel that stopped working.
    async fn full_queue(&self) -> Option<String> {
        // The publishing channel: a passive declare leaves its confirms alone, and
        // every queue asked for exists (declared on connect).
        let channel = self.current_channel()?;
        let topology = &self.inner.topology;
        let probe = async {
            let passive = lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let mut full = None;
            for queue in topology.queues() {
                let q = channel
                    .queue_declare(queue.as_str().into(), passive, Default::default())
                    .await
                    .ok()?;
                if u64::from(q.message_count()) >= topology.settings.max_length {
                    full = Some(queue);
                    break;
                }
            }
            full
        };
        tokio::time::timeout(crate::CLOSE_TIMEOUT, probe)
            .await
            .ok()
            .flatten()
    }

    /// Runs the connection supervisor until `shutdown`; then closes the connection
    /// (after the owner has drained its publishes).
    pub fn spawn_supervisor(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.maintain(shutdown).await })
    }

    /// Keeps the connection open until `shutdown` (reconnecting with backoff), then
    /// closes it. Services run it under their task supervisor.
    pub async fn maintain(&self, shutdown: CancellationToken) {
        let mut attempt = 0;
        while !shutdown.is_cancelled() {
            match self.open().await {
                Ok(pair) => {
                    attempt = 0;
                    tracing::info!("connected to RabbitMQ");
                    self.inner.failures_in_a_row.store(0, Ordering::Relaxed);
                    self.inner.reconnect.store(false, Ordering::Relaxed);
                    self.set(Some(pair));
                    let mut replaced = false;
                    loop {
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = self.inner.broken.notified() => {}
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                        if self.current_channel().is_none() {
                            break;
                        }
                        if self.inner.reconnect.swap(false, Ordering::Relaxed) {
                            if let Some(queue) = self.full_queue().await {
                                // Backpressure (reject-publish), not a broken channel.
                                tracing::debug!(%queue, "publishes refused: the queue is full");
                                continue;
                            }
                            tracing::warn!(
                                failures = FAILURES_BEFORE_RECONNECT,
                                "publishes keep failing on this connection; replacing it"
                            );
                            replaced = true;
                            break;
                        }
                    }
                    if !shutdown.is_cancelled() && !replaced {
                        tracing::warn!("lost the RabbitMQ connection; reconnecting");
                    }
                    let old = self
                        .inner
                        .current
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take();
                    if let Some(m) = &self.inner.metrics {
                        m.connected(false);
                    }
                    if let Some((conn, _)) = old {
                        crate::close_quietly(&conn).await;
                    }
                }
                Err(e) => {
                    attempt += 1;
                    // Capped at one second: every second ingest cannot publish is a
                    // second of 503s, and Whereby retries only twice within seconds.
                    // A refused connection costs the broker next to nothing.
                    let wait = backoff(attempt, RECONNECT_BACKOFF_CAP);
                    tracing::warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "cannot connect to RabbitMQ");
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Publishes one persistent, mandatory message and waits (at most `timeout`)
    /// for the broker's confirm. Ok means the broker has it in a queue.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let channel = self.current_channel().ok_or(PublishError::NotConnected)?;
        let started = Instant::now();
        let confirm = async {
            let pending = channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    payload,
                    properties.with_delivery_mode(2),
                )
                .await?;
            pending.await
        };
        let result = match tokio::time::timeout(timeout, confirm).await {
            Err(_) => Err(PublishError::Timeout),
            Ok(Err(e)) => {
                self.inner.broken.notify_one();
                Err(PublishError::Channel(e))
            }
            Ok(Ok(Confirmation::Ack(Some(_returned)))) => Err(PublishError::Unroutable),
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Nacked),
            // confirm_select is always on for this channel.
            Ok(Ok(Confirmation::NotRequested)) => Err(PublishError::NotConnected),
        };
        match &result {
            Ok(()) => self.inner.failures_in_a_row.store(0, Ordering::Relaxed),
            Err(PublishError::Nacked | PublishError::Timeout) => {
                let failures = self.inner.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                if failures >= FAILURES_BEFORE_RECONNECT {
                    self.inner.failures_in_a_row.store(0, Ordering::Relaxed);
                    self.inner.reconnect.store(true, Ordering::Relaxed);
                    self.inner.broken.notify_one();
                }
            }
            Err(_) => {}
        }
        if result.is_ok()
            && let Some(m) = &self.inner.metrics
        {
            m.confirmed(started.elapsed());
        }
        result
    }
}
