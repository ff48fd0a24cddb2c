//! The SQS poller: S3 "object created" notifications become recordings. A message
//! is deleted only after everything it announced is committed (and handed off); a
//! message that cannot be handled stays, reappears after its visibility timeout and
//! ends in the queue's dead-letter queue by its redrive policy. While Postgres or
//! RabbitMQ is down the poller stops receiving (every receive would count towards
//! the redrive limit) and waits.

use std::time::Duration;
use tracing::Instrument;

use storage::{
    QueueMessage,
    notification::{self, Notification},
};
use tokio_util::sync::CancellationToken;

use crate::intake::{Intake, IntakeError};

#[derive(Clone)]
pub struct SqsPoller {
    pub intake: Intake,
    pub sqs: storage::aws_sdk_sqs::Client,
    pub queue_url: String,
    /// One receive's wait (at most 20 s; SQS's limit).
    pub wait: Duration,
    pub visibility: Duration,
    /// The longest registering one object may take (S3, Postgres, RabbitMQ).
    pub register_timeout: Duration,
}

/// What to do with a message after handling it.
#[derive(Debug, PartialEq, Eq)]
pub enum Disposition {
    Delete,
    /// Leave it: it comes back after the visibility timeout (or goes to the DLQ).
    Leave(String),
    /// Leave it and pause: a dependency is down.
    LeaveAndPause(String),
}

impl SqsPoller {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0;
        while !shutdown.is_cancelled() {
            if !self.intake.dependencies_ready().await {
                failures += 1;
                let wait = messaging::backoff(failures, Duration::from_secs(5));
                tracing::warn!(
                    wait_ms = wait.as_millis() as u64,
                    "Postgres or RabbitMQ unavailable; not receiving from SQS"
                );
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                r = storage::receive(&self.sqs, &self.queue_url, self.wait, self.visibility) => r,
            };
            let messages = match received {
                Ok(m) => {
                    failures = 0;
                    m
                }
                Err(e) => {
                    failures += 1;
                    let wait = messaging::backoff(failures, Duration::from_secs(10));
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "SQS receive failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            let oldest = messages.iter().filter_map(|m| m.sent_at).min();
            self.intake
                .metrics
                .sqs_oldest_age
                .set(oldest.map_or(0.0, |t| {
                    (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
                }));
            for message in messages {
                self.intake
                    .metrics
                    .sqs
                    .with_label_values(&["received"])
                    .inc();
                // A message in hand is finished even during shutdown: it is quick,
                // and an unfinished one would only come back later.
                if let Disposition::LeaveAndPause(_) = self.process(&message).await {
                    break;
                }
            }
        }
        tracing::info!("SQS poller stopped");
    }

    /// Handles one message to the end, extending its visibility while it takes long.
    pub async fn process(&self, message: &QueueMessage) -> Disposition {
        // A trace of its own per notification, on to the pipeline's hand-off
        // (recording.ready carries its context).
        let span = tracing::info_span!("recording_notification", message_id = %message.message_id);
        self.process_in(message).instrument(span).await
    }

    async fn process_in(&self, message: &QueueMessage) -> Disposition {
        let work = self.handle(message);
        tokio::pin!(work);
        let mut heartbeat = tokio::time::interval(self.visibility / 2);
        heartbeat.tick().await;
        let disposition = loop {
            tokio::select! {
                d = &mut work => break d,
                _ = heartbeat.tick() => {
                    if let Err(e) = storage::extend_visibility(&self.sqs, &self.queue_url, &message.receipt_handle, self.visibility).await {
                        tracing::warn!(error = %e, "could not extend the message's visibility");
                    }
                }
            }
        };
        match &disposition {
            Disposition::Delete => {
                match storage::delete_message(&self.sqs, &self.queue_url, &message.receipt_handle)
                    .await
                {
                    Ok(()) => self
                        .intake
                        .metrics
                        .sqs
                        .with_label_values(&["deleted"])
                        .inc(),
                    // It comes back and is handled again, idempotently.
                    Err(e) => tracing::warn!(error = %e, "could not delete the SQS message"),
                }
            }
            Disposition::Leave(why) | Disposition::LeaveAndPause(why) => {
                self.intake.metrics.sqs.with_label_values(&["left"]).inc();
                tracing::warn!(message_id = %message.message_id, receive_count = message.receive_count, reason = %why, "leaving the SQS message for a later try");
            }
        }
        disposition
    }

    async fn handle(&self, message: &QueueMessage) -> Disposition {
        let (objects, unreadable) = match notification::parse(&message.body) {
            Ok(Notification::Test) => return Disposition::Delete,
            Ok(Notification::Created {
                objects,
                unreadable,
            }) => (objects, unreadable),
            Err(e) => {
                self.intake
                    .metrics
                    .sqs
                    .with_label_values(&["unreadable"])
                    .inc();
                return Disposition::Leave(format!("unreadable notification: {e}"));
            }
        };
        for object in &objects {
            let registering = self.intake.register(&object.bucket, &object.key);
            match tokio::time::timeout(self.register_timeout, registering).await {
                Ok(Ok(outcome)) => {
                    tracing::info!(bucket = %object.bucket, key = %object.key, ?outcome, "registered S3 object")
                }
                Ok(Err(IntakeError::Unavailable(e))) => return Disposition::LeaveAndPause(e),
                // S3 or Postgres stopped answering: the same as down.
                Err(_) => {
                    return Disposition::LeaveAndPause(format!(
                        "registering took longer than {:?}",
                        self.register_timeout
                    ));
                }
            }
        }
        if unreadable > 0 {
            // The readable records are registered; the message stays so that the
            // unreadable ones reach the dead-letter queue for a person to look at.
            self.intake
                .metrics
                .sqs
                .with_label_values(&["unreadable"])
                .inc();
            return Disposition::Leave(format!("{unreadable} unreadable record(s)"));
        }
        Disposition::Delete
    }
}
