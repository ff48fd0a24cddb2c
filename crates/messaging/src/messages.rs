//! The messages the services publish, each built in one place: where it goes, its
//! properties and headers (docs/messages.md). No service builds a `FieldTable` or
//! `BasicProperties` itself.

use std::time::Duration;

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable},
};

use crate::{
    HEADER_ATTEMPT, HEADER_EVENT_TYPE, HEADER_REPLAYS, HEADER_REQUEST_ID, PublishError, Publisher,
    RecordingReady, Topology, WebhookEnvelope, routing_key_for,
};

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

/// The properties of a webhook message: the event id as message id (consumers
/// deduplicate on it), its type and request id as headers, when it was received.
pub fn webhook_properties<E>(
    envelope: &WebhookEnvelope<E>,
    event_id: &str,
    event_type: &str,
) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(HEADER_EVENT_TYPE.into(), text(event_type));
    if let Some(id) = &envelope.request_id {
        headers.insert(HEADER_REQUEST_ID.into(), text(id));
    }
    with_trace_context(&mut headers);
    BasicProperties::default()
        .with_message_id(event_id.into())
        .with_content_type("application/json".into())
        .with_timestamp(u64::try_from(envelope.received_at.timestamp()).unwrap_or(0))
        .with_headers(headers)
}

/// The current span's W3C trace context (`traceparent`, `tracestate`), so that
/// the consumer's work joins the publisher's trace; nothing when tracing is off.
fn with_trace_context(headers: &mut FieldTable) {
    for (name, value) in telemetry::trace::current_context_headers() {
        headers.insert(name.into(), text(&value));
    }
}

/// A dead-lettered delivery put back (`whereby-ops dlq replay`): its properties
/// with a fresh retry count, the replay counted, the broker's death records removed.
pub fn replay_properties(received: &BasicProperties, replays: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (k, v) in received.headers().clone().unwrap_or_default().inner() {
        let name = k.as_str();
        if name != "x-death"
            && !name.starts_with("x-first-death")
            && !name.starts_with("x-last-death")
        {
            headers.insert(k.clone(), v.clone());
        }
    }
    headers.insert(HEADER_ATTEMPT.into(), AMQPValue::LongUInt(0));
    headers.insert(HEADER_REPLAYS.into(), AMQPValue::LongUInt(replays));
    received.clone().with_headers(headers).with_delivery_mode(2)
}

impl Publisher {
    /// An accepted webhook (`body` is its serialised `envelope`), to the events
    /// exchange under `whereby.<type>`. The message id is the event id: consumers
    /// deduplicate on it.
    pub async fn publish_webhook<E>(
        &self,
        envelope: &WebhookEnvelope<E>,
        event_id: &str,
        event_type: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let properties = webhook_properties(envelope, event_id, event_type);
        let exchange = self.topology().events_exchange();
        self.publish(
            &exchange,
            &routing_key_for(event_type),
            body,
            properties,
            timeout,
        )
        .await
    }

    /// A recording handed to the pipeline (`recording.ready`); the message id is
    /// the recording id, on which the pipeline deduplicates.
    pub async fn publish_recording_ready(
        &self,
        message: &RecordingReady,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let body = serde_json::to_vec(message).map_err(|_| PublishError::NotSerialisable)?;
        let mut headers = FieldTable::default();
        headers.insert(
            HEADER_REQUEST_ID.into(),
            text(&format!("recording-{}", message.recording_id)),
        );
        with_trace_context(&mut headers);
        let properties = BasicProperties::default()
            .with_message_id(message.recording_id.as_str().into())
            .with_content_type("application/json".into())
            .with_headers(headers);
        let exchange = self.topology().recordings_exchange();
        self.publish(
            &exchange,
            Topology::RECORDING_READY_ROUTING_KEY,
            &body,
            properties,
            timeout,
        )
        .await
    }

    /// A delivery sent on to the retry queue of `delay`, as attempt `attempt`: its
    /// body, headers, message id and content type as they came.
    pub async fn republish_for_retry(
        &self,
        received: &BasicProperties,
        body: &[u8],
        attempt: u32,
        delay: Duration,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let mut headers = received.headers().clone().unwrap_or_default();
        headers.insert(HEADER_ATTEMPT.into(), AMQPValue::LongUInt(attempt));
        let mut properties = BasicProperties::default().with_headers(headers);
        if let Some(id) = received.message_id() {
            properties = properties.with_message_id(id.clone());
        }
        if let Some(content_type) = received.content_type() {
            properties = properties.with_content_type(content_type.clone());
        }
        let exchange = self.topology().retry_exchange();
        self.publish(
            &exchange,
            &Topology::retry_routing_key(delay),
            body,
            properties,
            timeout,
        )
        .await
    }
}
