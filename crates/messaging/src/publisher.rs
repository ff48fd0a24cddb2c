use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
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
    #[error("the message could not be serialised")]
    NotSerialisable,
}

impl PublishError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotConnected => "not_connected",
            Self::Timeout => "timeout",
            Self::Nacked => "nacked",
            Self::Unroutable => "unroutable",
            Self::Channel(_) => "channel_error",
            Self::NotSerialisable => "not_serialisable",
        }
    }
}

/// Hooks for the owner's metrics: publish-confirm latency and connection state.
pub trait PublisherMetrics: Send + Sync {
    fn confirmed(&self, latency: Duration);
    fn connected(&self, connected: bool);
    /// A message published again on a new connection because the one it was
    /// sent on was lost or stopped confirming before it was confirmed.
    fn republished(&self) {}
}

/// The open connection and its publishing channel; `generation` grows with each.
struct Current {
    conn: Arc<Connection>,
    channel: Channel,
    generation: u64,
}

struct Inner {
    endpoints: Endpoints,
    name: String,
    topology: Topology,
    connect_timeout: Duration,
    current: RwLock<Option<Current>>,
    /// The generation of the newest channel: a publish waiting on an older one
    /// sends its message again on the new one.
    generation: tokio::sync::watch::Sender<u64>,
    broken: Notify,
    /// Nacks and confirm timeouts in a row on the current connection.
    failures_in_a_row: AtomicU32,
    /// Set when they pass [`FAILURES_BEFORE_RECONNECT`]: the supervisor then
    /// replaces the connection.
    reconnect: AtomicBool,
    /// Publishes waiting for their confirm, and the last time the broker answered
    /// one (or the first of them was sent): together they tell a stall.
    in_flight: AtomicUsize,
    /// A background redeclaration is running: connections replaced in a quick
    /// series (a hung node) start one, not one each.
    redeclaring: AtomicBool,
    /// Milliseconds after `created`.
    last_answer_ms: AtomicU64,
    created: Instant,
    metrics: Option<Arc<dyn PublisherMetrics>>,
}

/// Nacks or confirm timeouts in a row after which the connection is replaced. A
/// channel can keep failing while the broker has recovered: on a cluster, after a
/// quorum queue's leader died, a channel on a surviving node was seen to nack every
/// publish for 40 s and more while a new connection published at once.
pub const FAILURES_BEFORE_RECONNECT: u32 = 20;

/// How long publishes may wait with no confirm or nack at all before the
/// connection is replaced. A node that hangs (paused, partitioned, its disk
/// stalled) keeps the TCP connection open and answers nothing; heartbeats notice
/// only after 20 s. Confirms normally come within milliseconds, and a quorum
/// queue's leader election takes a few seconds on any node, so a replacement
/// that was not needed costs one connection.
pub const STALL_BEFORE_RECONNECT: Duration = Duration::from_millis(1500);

/// The longest a background redeclaration may wait (past a hung node's net tick).
const REDECLARE_TIMEOUT: Duration = Duration::from_secs(120);

/// The most times one message is sent (the first time and after connection
/// replacements), all within the caller's timeout.
const MAX_SENDS: u32 = 3;

/// The longest wait between two connection attempts.
pub const RECONNECT_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// A publisher with confirms on a connection that a supervisor task keeps alive:
/// on any failure it reconnects with backoff (to the next node in the list) and
/// redeclares the topology. Each publish is `mandatory` and waits for its own
/// confirm (pipelined across concurrent callers on one channel). A publish whose
/// connection is lost or stalls before its confirm is sent again on the next
/// connection within the caller's timeout: the same message may then be queued
/// twice, which consumers absorb (they deduplicate by message id), while a caller
/// answered "not confirmed" would be a webhook Whereby may never send again.
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
                generation: tokio::sync::watch::Sender::new(0),
                broken: Notify::new(),
                failures_in_a_row: AtomicU32::new(0),
                reconnect: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                redeclaring: AtomicBool::new(false),
                last_answer_ms: AtomicU64::new(0),
                created: Instant::now(),
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
        self.current_with_generation().map(|(ch, _)| ch)
    }

    fn current_with_generation(&self) -> Option<(Channel, u64)> {
        let guard = self
            .inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard
            .as_ref()
            .filter(|c| c.conn.status().connected() && c.channel.status().connected())
            .map(|c| (c.channel.clone(), c.generation))
    }

    /// Installs a new connection and wakes the publishes waiting for one.
    fn install(&self, conn: Arc<Connection>, channel: Channel) {
        // Only the supervisor installs: no other writer races this increment.
        let generation = *self.inner.generation.borrow() + 1;
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Current {
            conn,
            channel,
            generation,
        });
        self.answered();
        // Sent after the channel is in place, so a woken waiter finds it.
        self.inner.generation.send_replace(generation);
        if let Some(m) = &self.inner.metrics {
            m.connected(true);
        }
    }

    /// A channel newer than `seen`, waiting for the supervisor to open one.
    async fn channel_after(
        &self,
        seen: Option<u64>,
        changes: &mut tokio::sync::watch::Receiver<u64>,
    ) -> (Channel, u64) {
        loop {
            changes.borrow_and_update();
            if let Some((channel, generation)) = self.current_with_generation()
                && seen.is_none_or(|s| generation > s)
            {
                return (channel, generation);
            }
            if changes.changed().await.is_err() {
                // The sender lives in `Inner`, as long as `self`.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Notes that the broker answered a publish (or that a wait begins afresh).
    fn answered(&self) {
        let ms = u64::try_from(self.inner.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.inner.last_answer_ms.store(ms, Ordering::Relaxed);
    }

    /// Publishes are waiting and the broker has answered none of them for
    /// [`STALL_BEFORE_RECONNECT`].
    fn stalled(&self) -> bool {
        let since = self
            .inner
            .created
            .elapsed()
            .saturating_sub(Duration::from_millis(
                self.inner.last_answer_ms.load(Ordering::Relaxed),
            ));
        self.inner.in_flight.load(Ordering::Relaxed) > 0 && since > STALL_BEFORE_RECONNECT
    }

    /// Connects to the next node with a confirming channel. `declare`: declare
    /// the topology before the channel is used (the first connection of the
    /// process). Later connections redeclare it in the background (see
    /// [`Self::maintain`]).
    async fn open(&self, declare: bool) -> Result<(Arc<Connection>, Channel), MessagingError> {
        let conn = self
            .inner
            .endpoints
            .connect(&self.inner.name, self.inner.connect_timeout)
            .await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        if declare {
            self.inner.topology.declare(&conn, &channel).await?;
        }
        Ok((Arc::new(conn), channel))
    }

    /// Declares the topology again on a channel of its own, without holding up
    /// publishes: while a cluster node hangs, declarations (metadata transactions
    /// across every node) wait until the others count it down, up to the net tick
    /// time (60 s by default), while publishing through a live node works as soon
    /// as the queue has a leader. The queues are durable and were declared at
    /// start; this only restores them on a broker that lost its definitions.
    fn redeclare_in_background(&self, conn: Arc<Connection>) {
        if self.inner.redeclaring.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let topology = &this.inner.topology;
            let declare = async {
                let channel = conn.create_channel().await?;
                topology.declare(&conn, &channel).await?;
                let _ = channel.close(200, "declared".into()).await;
                Ok::<(), lapin::Error>(())
            };
            match tokio::time::timeout(REDECLARE_TIMEOUT, declare).await {
                Ok(Ok(())) => tracing::debug!("topology declared again"),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not declare the topology again"),
                Err(_) => tracing::warn!(
                    timeout_s = REDECLARE_TIMEOUT.as_secs(),
                    "declaring the topology again did not finish in time"
                ),
            }
            this.inner.redeclaring.store(false, Ordering::Release);
        });
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
        let mut declared = false;
        while !shutdown.is_cancelled() {
            match self.open(!declared).await {
                Ok((conn, channel)) => {
                    attempt = 0;
                    tracing::info!("connected to RabbitMQ");
                    if declared {
                        self.redeclare_in_background(conn.clone());
                    }
                    declared = true;
                    self.inner.failures_in_a_row.store(0, Ordering::Relaxed);
                    self.inner.reconnect.store(false, Ordering::Relaxed);
                    self.install(conn, channel);
                    let replaced = self.watch(&shutdown).await;
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
                    if let Some(old) = old {
                        if shutdown.is_cancelled() {
                            crate::close_quietly(&old.conn).await;
                        } else {
                            // A hung node never answers the close: open the next
                            // connection meanwhile.
                            tokio::spawn(async move { crate::close_quietly(&old.conn).await });
                        }
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

    /// Watches the installed connection until it is lost (false), `shutdown`
    /// (false), or it must be replaced (true): it stopped answering publishes, or
    /// nacks them all while no queue is full.
    async fn watch(&self, shutdown: &CancellationToken) -> bool {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = self.inner.broken.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            if self.current_channel().is_none() {
                return false;
            }
            // A resource alarm blocks publishers on every node: waiting is right.
            if self.stalled() && !self.blocked() {
                tracing::warn!(
                    stalled_ms = STALL_BEFORE_RECONNECT.as_millis() as u64,
                    "the broker stopped answering publishes on this connection; replacing it"
                );
                return true;
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
                return true;
            }
        }
    }

    /// The broker blocked this connection (a memory or disk alarm).
    fn blocked(&self) -> bool {
        self.inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|c| c.conn.status().blocked())
    }

    /// Publishes one persistent, mandatory message and waits (at most `timeout`)
    /// for the broker's confirm. Ok means the broker has it in a queue. Without a
    /// connection it waits for one; when the connection it sent on is lost or
    /// replaced before the confirm, the message is sent again on the new one (at
    /// most [`MAX_SENDS`] times in all), all within `timeout`.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let _waiting = InFlight::enter(self);
        let mut changes = self.inner.generation.subscribe();
        let mut sent_on = None;
        let mut sends = 0;
        let result = loop {
            let Ok((channel, generation)) =
                tokio::time::timeout_at(deadline, self.channel_after(sent_on, &mut changes)).await
            else {
                break Err(if sends == 0 {
                    PublishError::NotConnected
                } else {
                    PublishError::Timeout
                });
            };
            if sends > 0
                && let Some(m) = &self.inner.metrics
            {
                m.republished();
            }
            sends += 1;
            sent_on = Some(generation);
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
                        properties.clone().with_delivery_mode(2),
                    )
                    .await?;
                pending.await
            };
            let outcome = tokio::select! {
                outcome = tokio::time::timeout_at(deadline, confirm) => outcome,
                _ = self.channel_after(sent_on, &mut changes), if sends < MAX_SENDS => continue,
            };
            match outcome {
                Err(_) => break Err(PublishError::Timeout),
                Ok(Err(e)) => {
                    self.inner.broken.notify_one();
                    if sends < MAX_SENDS {
                        continue;
                    }
                    break Err(PublishError::Channel(e));
                }
                Ok(Ok(confirmation)) => {
                    self.answered();
                    break match confirmation {
                        Confirmation::Ack(Some(_returned)) => Err(PublishError::Unroutable),
                        Confirmation::Ack(None) => Ok(()),
                        Confirmation::Nack(_) => Err(PublishError::Nacked),
                        // confirm_select is always on for this channel.
                        Confirmation::NotRequested => Err(PublishError::NotConnected),
                    };
                }
            }
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

/// One publish waiting for its confirm (see [`Publisher::stalled`]).
struct InFlight<'a>(&'a Publisher);

impl<'a> InFlight<'a> {
    fn enter(publisher: &'a Publisher) -> Self {
        if publisher.inner.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            // The first after a quiet spell: the stall clock starts now.
            publisher.answered();
        }
        Self(publisher)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
