use std::time::Duration;

use lapin::{
    Channel, Connection, ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};

/// Settings that shape the topology. Changing a queue's arguments needs a new
/// queue name (RabbitMQ refuses to redeclare with other arguments), so the retry
/// queues carry their delay in their names.
#[derive(Debug, Clone)]
pub struct TopologySettings {
    /// Prepended to every name: tests use a random one for isolation.
    pub prefix: String,
    /// Deliveries of one message before the broker dead-letters it (a worker that
    /// crashes on it, say). Explicit: RabbitMQ 3.x has no default, 4.x has 20.
    pub delivery_limit: u32,
    /// The delayed-retry steps, shortest first.
    pub retry_delays: Vec<Duration>,
    /// Bound on the worker queue; past it publishes are refused (ingest answers 503).
    pub max_length: u64,
    /// `x-quorum-initial-group-size` of every quorum queue; `None`: the broker's
    /// default (every node of the cluster).
    pub quorum_initial_group_size: Option<u32>,
}

impl Default for TopologySettings {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            delivery_limit: 10,
            retry_delays: vec![
                Duration::from_secs(2),
                Duration::from_secs(10),
                Duration::from_secs(60),
            ],
            max_length: 1_000_000,
            quorum_initial_group_size: None,
        }
    }
}

/// The names and the declaration of everything on the broker (docs/messages.md).
#[derive(Debug, Clone)]
pub struct Topology {
    pub settings: TopologySettings,
}

/// The routing key for a webhook event type: `whereby.<type>`, with anything
/// outside `[A-Za-z0-9._-]` replaced and the length bounded.
pub fn routing_key_for(event_type: &str) -> String {
    let cleaned: String = event_type
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("whereby.{cleaned}")
}

/// The broker's 406, PRECONDITION_FAILED (by reply code, not by text).
fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(
        e.kind(),
        lapin::ErrorKind::ProtocolError(amqp)
            if matches!(amqp.kind(), lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::PRECONDITIONFAILED))
    )
}

/// Declares queues on a channel of its own. A queue that exists with other
/// arguments is refused with 406, which closes the channel: the broker compares
/// even `x-quorum-initial-group-size`, which only places a new queue, in both
/// directions, so replicas whose settings differ (during a rolling change) would
/// refuse each other's queues. Such a queue is kept as it is, checked to exist
/// (passively, on a new channel) and reported; changing its arguments takes a new
/// queue name (docs/operations.md).
pub(crate) struct QueueDeclarer<'a> {
    conn: &'a Connection,
    channel: Channel,
}

impl<'a> QueueDeclarer<'a> {
    async fn open(conn: &'a Connection) -> Result<Self, lapin::Error> {
        Ok(Self {
            conn,
            channel: conn.create_channel().await?,
        })
    }

    async fn declare(&mut self, name: &str, args: FieldTable) -> Result<(), lapin::Error> {
        match self
            .channel
            .queue_declare(name.into(), QueueDeclareOptions::durable(), args)
            .await
        {
            Ok(_) => Ok(()),
            Err(refused) if is_precondition_failed(&refused) => {
                self.channel = self.conn.create_channel().await?;
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                self.channel
                    .queue_declare(name.into(), passive, FieldTable::default())
                    .await?;
                tracing::warn!(queue = name, reason = %refused, "the queue exists with other arguments; it is kept as it is");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn close(self) {
        let _ = tokio::time::timeout(
            crate::CLOSE_TIMEOUT,
            self.channel.close(200, "declared".into()),
        )
        .await;
    }
}

fn string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

fn long(n: u64) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX))
}

impl Topology {
    pub fn new(settings: TopologySettings) -> Self {
        Self { settings }
    }

    /// The topology every service and tool declares, from the `AMQP_*` settings:
    /// one place, so that no two declarations can disagree.
    pub fn from_settings(amqp: &settings::AmqpSettings) -> Self {
        Self::new(TopologySettings {
            prefix: amqp.amqp_prefix.clone(),
            delivery_limit: amqp.amqp_delivery_limit,
            retry_delays: amqp.amqp_retry_delays_ms.clone(),
            max_length: amqp.amqp_max_length,
            quorum_initial_group_size: amqp.amqp_quorum_initial_group_size,
        })
    }

    /// A quorum queue's type and, when set, its initial group size.
    fn quorum(&self, args: &mut FieldTable) {
        args.insert("x-queue-type".into(), string("quorum"));
        if let Some(size) = self.settings.quorum_initial_group_size {
            args.insert("x-quorum-initial-group-size".into(), long(u64::from(size)));
        }
    }

    /// Every queue `declare` makes.
    pub(crate) fn queues(&self) -> Vec<String> {
        let mut queues = vec![
            self.worker_queue(),
            self.dead_letter_queue(),
            self.pipeline_queue(),
            self.recordings_dead_letter_queue(),
        ];
        queues.extend(
            self.settings
                .retry_delays
                .iter()
                .map(|d| self.retry_queue(*d)),
        );
        queues
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.settings.prefix)
    }

    /// Topic exchange webhook-ingest publishes to, routing key `whereby.<type>`.
    pub fn events_exchange(&self) -> String {
        self.name("whereby.events")
    }

    /// The worker's quorum queue, bound to `whereby.#`.
    pub fn worker_queue(&self) -> String {
        self.name("whereby.events.worker")
    }

    /// Direct exchange for delayed retries; routing key = the retry queue's delay.
    // `delay`, not `retry`: the first release declared classic retry queues under
    // `whereby.events.retry*`; a queue's type cannot change in place, so the
    // quorum ones take new names (docs/operations.md: deleting the old ones).
    pub fn retry_exchange(&self) -> String {
        self.name("whereby.events.delay")
    }

    pub fn retry_routing_key(delay: Duration) -> String {
        format!("{}ms", delay.as_millis())
    }

    pub fn retry_queue(&self, delay: Duration) -> String {
        self.name(&format!(
            "whereby.events.delay.{}",
            Self::retry_routing_key(delay)
        ))
    }

    /// The routing key messages come back with from a retry queue.
    pub const RETRIED_ROUTING_KEY: &'static str = "whereby.retried";

    /// Fanout exchange for messages the worker gives up on or cannot parse.
    pub fn dead_letter_exchange(&self) -> String {
        self.name("whereby.events.dlx")
    }

    pub fn dead_letter_queue(&self) -> String {
        self.name("whereby.events.dead")
    }

    /// Topic exchange for the recordings handed to the processing pipeline.
    pub fn recordings_exchange(&self) -> String {
        self.name("recordings")
    }

    pub const RECORDING_READY_ROUTING_KEY: &'static str = "recording.ready";

    /// The pipeline's queue (the other team consumes it), bound to `recording.#`.
    pub fn pipeline_queue(&self) -> String {
        self.name("recordings.pipeline")
    }

    pub fn recordings_dead_letter_exchange(&self) -> String {
        self.name("recordings.dlx")
    }

    pub fn recordings_dead_letter_queue(&self) -> String {
        self.name("recordings.dead")
    }

    /// Declares everything; idempotent, so every process does it on (re)connect.
    /// `conn` is `channel`'s connection: queues are declared on a channel of their
    /// own, which a refused declaration may close (see [`QueueDeclarer`]).
    pub async fn declare(&self, conn: &Connection, channel: &Channel) -> Result<(), lapin::Error> {
        let mut declarer = QueueDeclarer::open(conn).await?;
        let queues = &mut declarer;
        let events = self.events_exchange();
        let retry = self.retry_exchange();
        self.declare_work_queue(
            channel,
            queues,
            &events,
            &self.worker_queue(),
            "whereby.#",
            &self.dead_letter_exchange(),
            &self.dead_letter_queue(),
        )
        .await?;
        // The hand-off to the pipeline: the same guarantees as the worker queue.
        self.declare_work_queue(
            channel,
            queues,
            &self.recordings_exchange(),
            &self.pipeline_queue(),
            "recording.#",
            &self.recordings_dead_letter_exchange(),
            &self.recordings_dead_letter_queue(),
        )
        .await?;
        self.exchange(channel, &retry, ExchangeKind::Direct).await?;
        // One retry queue per delay: a fixed per-queue TTL, so no message waits
        // behind a longer one, then back to the events exchange.
        // Quorum queues with at-least-once dead-lettering: when the TTL expires while
        // the worker queue refuses publishes (full), the message stays here and is
        // moved once there is room, instead of being dropped; and it lives on a
        // quorum of nodes, not one.
        for delay in &self.settings.retry_delays {
            let mut args = FieldTable::default();
            let queue = self.retry_queue(*delay);
            self.quorum(&mut args);
            args.insert(
                "x-message-ttl".into(),
                long(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            );
            args.insert("x-dead-letter-strategy".into(), string("at-least-once"));
            args.insert("x-overflow".into(), string("reject-publish"));
            args.insert("x-max-length".into(), long(self.settings.max_length));
            args.insert("x-dead-letter-exchange".into(), string(&events));
            args.insert(
                "x-dead-letter-routing-key".into(),
                string(Self::RETRIED_ROUTING_KEY),
            );
            queues.declare(&queue, args).await?;
            self.bind(channel, &queue, &retry, &Self::retry_routing_key(*delay))
                .await?;
        }
        declarer.close().await;
        Ok(())
    }

    /// A topic exchange and its quorum work queue with an explicit delivery limit,
    /// dead-lettering that RabbitMQ confirms internally (at-least-once needs
    /// reject-publish) to a fanout exchange and its quorum dead-letter queue, and a
    /// length bound past which publishes are refused.
    #[allow(clippy::too_many_arguments, reason = "the names of one queue's set")]
    async fn declare_work_queue(
        &self,
        channel: &Channel,
        queues: &mut QueueDeclarer<'_>,
        exchange: &str,
        queue: &str,
        binding: &str,
        dlx: &str,
        dead: &str,
    ) -> Result<(), lapin::Error> {
        self.exchange(channel, exchange, ExchangeKind::Topic)
            .await?;
        self.exchange(channel, dlx, ExchangeKind::Fanout).await?;
        let mut dead_args = FieldTable::default();
        self.quorum(&mut dead_args);
        queues.declare(dead, dead_args).await?;
        self.bind(channel, dead, dlx, "").await?;
        let mut args = FieldTable::default();
        self.quorum(&mut args);
        args.insert(
            "x-delivery-limit".into(),
            long(u64::from(self.settings.delivery_limit)),
        );
        args.insert("x-dead-letter-exchange".into(), string(dlx));
        args.insert("x-dead-letter-strategy".into(), string("at-least-once"));
        args.insert("x-overflow".into(), string("reject-publish"));
        args.insert("x-max-length".into(), long(self.settings.max_length));
        queues.declare(queue, args).await?;
        self.bind(channel, queue, exchange, binding).await
    }

    async fn exchange(
        &self,
        channel: &Channel,
        name: &str,
        kind: ExchangeKind,
    ) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(name.into(), kind, durable, FieldTable::default())
            .await
    }

    async fn bind(
        &self,
        channel: &Channel,
        queue: &str,
        exchange: &str,
        key: &str,
    ) -> Result<(), lapin::Error> {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    }

    /// Deletes everything `declare` made (tests clean up their prefixed topology).
    pub async fn delete(&self, channel: &Channel) -> Result<(), lapin::Error> {
        for q in self.queues() {
            channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for e in [
            self.events_exchange(),
            self.retry_exchange(),
            self.dead_letter_exchange(),
            self.recordings_exchange(),
            self.recordings_dead_letter_exchange(),
        ] {
            channel
                .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_are_safe() {
        assert_eq!(
            routing_key_for("room.client.joined"),
            "whereby.room.client.joined"
        );
        assert_eq!(routing_key_for("a#b*c d"), "whereby.a_b_c_d");
        assert!(routing_key_for(&"x".repeat(500)).len() <= 208);
    }

    /// A topology first declared without a group size (as before this setting
    /// existed, or by a replica not yet upgraded) is declared again with one, and
    /// the other way round: the broker refuses both (406), the queues are kept as
    /// they are, and the caller's channel stays open for its publishing.
    #[tokio::test]
    async fn the_initial_group_size_can_be_added_to_existing_queues() {
        let url = std::env::var("TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        let conn = crate::connect(&url, "test", Duration::from_secs(5))
            .await
            .expect("broker");
        let channel = conn.create_channel().await.expect("channel");
        let mut settings = TopologySettings {
            prefix: format!("t{:016x}.", fastrand::u64(..)),
            ..TopologySettings::default()
        };
        Topology::new(settings.clone())
            .declare(&conn, &channel)
            .await
            .expect("declared without");
        settings.quorum_initial_group_size = Some(3);
        let topology = Topology::new(settings.clone());
        topology
            .declare(&conn, &channel)
            .await
            .expect("declared with a size");
        // And the other way round: made with a size, declared without one.
        settings.prefix = format!("t{:016x}.", fastrand::u64(..));
        let sized = Topology::new(settings.clone());
        sized
            .declare(&conn, &channel)
            .await
            .expect("made with a size");
        settings.quorum_initial_group_size = None;
        Topology::new(settings)
            .declare(&conn, &channel)
            .await
            .expect("declared without");
        assert!(
            channel.status().connected(),
            "the caller's channel lives on"
        );
        topology.delete(&channel).await.expect("clean up");
        sized.delete(&channel).await.expect("clean up");
        let _ = conn.close(200, "bye".into()).await;
    }
}
