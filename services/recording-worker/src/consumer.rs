//! The consume loop: a supervised RabbitMQ connection, one delivery at a time, ack
//! only after the database commit. Postgres being down pauses the loop on the
//! delivery in hand (no nack, which would burn the delivery limit and flood the
//! dead-letter queue); a broken broker connection is rebuilt with backoff.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use db::DbPool;
use futures_util::StreamExt;
use messaging::{
    HEADER_ATTEMPT, HEADER_REQUEST_ID, Publisher, Topology, backoff, header_str, header_u32,
    lapin::{
        message::Delivery,
        options::{
            BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions,
            BasicRejectOptions,
        },
        types::FieldTable,
    },
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    apply::{self, ApplyError, Outcome},
    metrics::WorkerMetrics,
};

/// Everything the loop needs; cheap to clone.
#[derive(Clone)]
pub struct Consumer {
    /// Shared by the clones: a restarted loop goes on from the node after the lost one.
    pub endpoints: std::sync::Arc<messaging::Endpoints>,
    pub topology: Topology,
    pub prefetch: u16,
    /// Deliveries applied in one transaction at most (see `apply::apply_batch`).
    pub batch_size: usize,
    /// How long a batch waits for more deliveries after its first.
    pub batch_linger: Duration,
    pub pool: DbPool,
    /// For delayed retries, on a connection of its own.
    pub publisher: Publisher,
    pub metrics: WorkerMetrics,
    /// True while consuming and the database answered last time.
    pub ready: Arc<AtomicBool>,
    pub publish_timeout: Duration,
    /// The longest one batch may take in the database, pool wait included: past
    /// it the connection is given up (a black-holed server answers nothing, and
    /// nothing on our side would notice) and the batch is held and retried.
    pub apply_timeout: Duration,
    /// Fault injection for tests: while positive, each commit is followed by
    /// dropping the connection instead of acking (what a crash between commit and
    /// ack looks like to the broker). Always `None` outside tests.
    pub crash_after_commit: Option<Arc<std::sync::atomic::AtomicU32>>,
    /// Where recordings land, for `recording.finished`.
    pub location: Option<domain::recording::RecordingLocation>,
    /// Fault injection for the fault suite: when set, the loop panics at its next
    /// delivery (once). Only settable when `WORKER_FAULT_INJECTION` is on.
    pub panic_next: Arc<AtomicBool>,
}

enum Finish {
    Acked,
    /// Leave it unacknowledged: the broker redelivers it (shutdown mid-wait).
    Abandoned,
}

/// What became of one delivery after its batch committed.
enum Settled {
    /// Acked with the batch.
    Ack,
    /// Dead-lettered on its own.
    Rejected,
    /// Shut down while scheduling its retry: the batch stays unacknowledged.
    Abandoned,
}

/// What became of a group of events handed to Postgres.
enum Held {
    Applied(Vec<Outcome>),
    /// Shut down while waiting for Postgres: leave them unacknowledged.
    Abandoned,
    /// A database error that is not unavailability: something in the group.
    Refused(db::QueryError),
}

/// Which attempt a delivery is (0 for the first; the retry path counts up).
fn attempt_of(delivery: &Delivery) -> u32 {
    header_u32(delivery.properties.headers().as_ref(), HEADER_ATTEMPT).unwrap_or(0)
}

impl Consumer {
    /// Runs until `shutdown`; then finishes the delivery in hand and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut attempt = 0;
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => attempt = 0,
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "consumer stopped; reconnecting");
                }
            }
            self.ready.store(false, Ordering::Relaxed);
            self.metrics.set_connected(false);
            if shutdown.is_cancelled() {
                break;
            }
            let wait = backoff(attempt.max(1), Duration::from_secs(5));
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("consumer stopped");
    }

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), messaging::MessagingError> {
        let conn = self
            .endpoints
            .connect("recording-worker", Duration::from_secs(5))
            .await?;
        let channel = conn.create_channel().await?;
        self.topology.declare(&conn, &channel).await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("recording-worker-{}", uuid::Uuid::new_v4().simple());
        let mut deliveries = channel
            .basic_consume(
                self.topology.worker_queue().as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue = %self.topology.worker_queue(), "consuming");
        self.ready.store(true, Ordering::Relaxed);
        self.metrics.set_connected(true);
        let result = loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                next = deliveries.next() => next,
            };
            match next {
                Some(Ok(delivery)) => {
                    if self.panic_next.swap(false, Ordering::SeqCst) {
                        panic!("test fault: the consume loop panics with a delivery in hand");
                    }
                    // What arrives within the linger joins the batch (what has
                    // already arrived always does: the stream is polled before the
                    // deadline is checked).
                    let mut batch = vec![delivery];
                    let mut failed = None;
                    let deadline = tokio::time::Instant::now() + self.batch_linger;
                    while batch.len() < self.batch_size {
                        match tokio::time::timeout_at(deadline, deliveries.next()).await {
                            Ok(Some(Ok(d))) => batch.push(d),
                            Ok(Some(Err(e))) => {
                                failed = Some(e);
                                break;
                            }
                            Ok(None) | Err(_) => break,
                        }
                    }
                    if let Finish::Abandoned = self.process_batch(batch, shutdown).await {
                        // Leave without acking; the broker requeues on close.
                        break Ok(());
                    }
                    if let Some(e) = failed {
                        break Err(e.into());
                    }
                }
                Some(Err(e)) => break Err(e.into()),
                // The broker cancelled the subscription (the queue was deleted, or
                // the node hosting it went away): a new connection declares the
                // topology again and subscribes anew.
                None => {
                    break Err(messaging::MessagingError::Connect(
                        "the consumer was cancelled by the broker".to_owned(),
                    ));
                }
            }
        };
        // Deliveries prefetched but not processed go back to the queue when the
        // channel closes; they are redelivered and, being idempotent, harmless.
        if channel.status().connected() {
            let _ = tokio::time::timeout(
                messaging::CLOSE_TIMEOUT,
                channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()),
            )
            .await;
        }
        messaging::close_quietly(&conn).await;
        result
    }

    /// Handles a batch: unreadable deliveries are dead-lettered, the rest applied in
    /// one transaction and acked after its commit. Postgres down: hold and wait. A
    /// database error caused by one event: the batch is redone as batches of one,
    /// and a batch of one the database refuses is dead-lettered.
    async fn process_batch(&self, batch: Vec<Delivery>, shutdown: &CancellationToken) -> Finish {
        // The delivery with the highest tag among those to ack, acked last with
        // `multiple`.
        let mut last_to_ack: Option<Delivery> = None;
        let mut readable = Vec::with_capacity(batch.len());
        for delivery in batch {
            match apply::parse(&delivery.data) {
                Ok(event) => {
                    let span = event_span(&delivery, &event);
                    readable.push((delivery, event, span));
                }
                Err(reason) => {
                    self.metrics.consumed.inc();
                    tracing::error!(%reason, "dead-lettering an unreadable message");
                    self.metrics.dead_lettered.inc();
                    let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
                }
            }
        }
        // Groups still to apply; a refused group comes back split into ones.
        let mut groups = vec![readable];
        while let Some(group) = groups.pop() {
            if group.is_empty() {
                continue;
            }
            // One transaction for the group: its span links every event's (each in
            // the trace of the webhook it came from), and the commit is in it.
            let applying = tracing::info_span!("apply_batch", events = group.len());
            for (_, _, event_span) in &group {
                telemetry::trace::link(&applying, event_span);
            }
            let outcomes = match self.apply_held(&group, shutdown).instrument(applying).await {
                Held::Applied(outcomes) => outcomes,
                Held::Abandoned => return Finish::Abandoned,
                Held::Refused(e) if group.len() > 1 => {
                    tracing::warn!(error = %e, events = group.len(), "a batch failed; applying its events one by one");
                    // Popped from the end: reversed, so they run in delivery order.
                    groups.extend(group.into_iter().rev().map(|one| vec![one]));
                    continue;
                }
                Held::Refused(e) => {
                    vec![Outcome::Poison(format!("database refused the event: {e}"))]
                }
            };
            // One outcome per event, or none is trusted: a delivery without its
            // outcome must not be acked by the batch's `multiple` ack.
            if outcomes.len() != group.len() {
                tracing::error!(
                    events = group.len(),
                    outcomes = outcomes.len(),
                    "outcomes do not match the batch; leaving it unacknowledged"
                );
                return Finish::Abandoned;
            }
            for ((delivery, event, span), outcome) in group.into_iter().zip(outcomes) {
                match self
                    .settle(&delivery, &event, outcome, shutdown)
                    .instrument(span)
                    .await
                {
                    Settled::Ack => {
                        if last_to_ack
                            .as_ref()
                            .is_none_or(|d: &Delivery| d.delivery_tag < delivery.delivery_tag)
                        {
                            last_to_ack = Some(delivery);
                        }
                    }
                    Settled::Rejected => {}
                    Settled::Abandoned => return Finish::Abandoned,
                }
            }
        }
        let Some(last) = last_to_ack else {
            return Finish::Acked;
        };
        if let Some(crashes) = &self.crash_after_commit
            && crashes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            tracing::warn!("test fault: dropping the connection between commit and ack");
            return Finish::Abandoned;
        }
        // One ack for the batch: every delivery up to the last one settled, on a
        // channel that processes one batch at a time (earlier deliveries are all
        // settled, later ones not yet received into a batch). A rejected one in
        // between is already settled and unaffected. Ok(false) means the channel
        // was recovered meanwhile: the broker redelivers and the inbox turns each
        // into a duplicate.
        if !matches!(last.ack(BasicAckOptions { multiple: true }).await, Ok(true)) {
            tracing::warn!("ack not delivered; the batch will be redelivered and deduplicated");
        }
        Finish::Acked
    }

    /// Applies a group, holding it while Postgres is unavailable.
    async fn apply_held(
        &self,
        group: &[(Delivery, apply::Event, tracing::Span)],
        shutdown: &CancellationToken,
    ) -> Held {
        let delays = self.topology.settings.retry_delays.len();
        let inputs: Vec<(&apply::Event, bool)> = group
            .iter()
            .map(|(d, e, _)| (e, (attempt_of(d) as usize) < delays))
            .collect();
        let mut waits = 0;
        loop {
            let applying = apply::apply_batch(&self.pool, &inputs, self.location.as_ref());
            match apply::bounded(self.apply_timeout, applying).await {
                Ok(outcomes) => {
                    self.ready.store(true, Ordering::Relaxed);
                    return Held::Applied(outcomes);
                }
                Err(ApplyError::Unavailable(e)) => {
                    waits += 1;
                    self.ready.store(false, Ordering::Relaxed);
                    self.metrics.database_waits.inc();
                    let wait = backoff(waits, Duration::from_secs(5));
                    tracing::warn!(error = %e, events = inputs.len(), wait_ms = wait.as_millis() as u64, "Postgres unavailable; holding the batch");
                    tokio::select! {
                        () = shutdown.cancelled() => return Held::Abandoned,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(ApplyError::Query(e)) => return Held::Refused(e),
            }
        }
    }

    /// After the commit: a retry scheduled (confirmed) or the outcome counted, the
    /// delivery then to be acked with its batch; a poison event is dead-lettered.
    async fn settle(
        &self,
        delivery: &Delivery,
        event: &apply::Event,
        outcome: Outcome,
        shutdown: &CancellationToken,
    ) -> Settled {
        self.metrics.consumed.inc();
        match &outcome {
            Outcome::RetryLater => {
                let attempt = attempt_of(delivery);
                if let Finish::Abandoned = self.schedule_retry(delivery, attempt, shutdown).await {
                    return Settled::Abandoned;
                }
                self.metrics.retried.inc();
                tracing::info!(
                    attempt = attempt + 1,
                    "meeting not known yet; retrying later"
                );
            }
            Outcome::Poison(reason) => {
                tracing::error!(%reason, "dead-lettering event");
                self.metrics.dead_lettered.inc();
                let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
                return Settled::Rejected;
            }
            done => {
                self.metrics
                    .outcomes
                    .with_label_values(&[done.label()])
                    .inc();
                self.metrics
                    .by_type
                    .with_label_values(&[domain::webhook::type_label(&event.header.event_type)])
                    .inc();
                self.metrics.lag(apply::lag(event));
                tracing::info!(outcome = done.label(), event_type = %event.header.event_type, "handled event");
            }
        }
        Settled::Ack
    }

    /// Publishes the delivery to the next retry queue (confirmed) before it is
    /// acked, so the event is in exactly one queue at every moment.
    async fn schedule_retry(
        &self,
        delivery: &Delivery,
        attempt: u32,
        shutdown: &CancellationToken,
    ) -> Finish {
        let delays = &self.topology.settings.retry_delays;
        // Never past the last delay; settings refuse an empty list, and no delay
        // at all would still be a delay queue's worth of waiting, not a panic.
        let delay = delays
            .get(attempt as usize)
            .or(delays.last())
            .copied()
            .unwrap_or(Duration::from_secs(1));
        let mut tries = 0;
        loop {
            match self
                .publisher
                .republish_for_retry(
                    &delivery.properties,
                    &delivery.data,
                    attempt + 1,
                    delay,
                    self.publish_timeout,
                )
                .await
            {
                Ok(()) => return Finish::Acked,
                Err(e) => {
                    tries += 1;
                    let wait = backoff(tries, Duration::from_secs(5));
                    tracing::warn!(error = %e, "cannot schedule the retry yet");
                    tokio::select! {
                        () = shutdown.cancelled() => return Finish::Abandoned,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

/// The span of one event, from its arrival in a batch to its acknowledgement: a
/// child of the span that published it when the message carries a trace context,
/// so that Whereby's POST and the event's handling share one trace; the batch's
/// transaction (`apply_batch`) links to it.
fn event_span(delivery: &Delivery, event: &apply::Event) -> tracing::Span {
    let headers = delivery.properties.headers().as_ref();
    let request_id = header_str(headers, HEADER_REQUEST_ID).unwrap_or("");
    let span = tracing::info_span!("event", request_id = %request_id, event_id = %event.header.id);
    telemetry::trace::follow(&span, |name| header_str(headers, name));
    span
}
