use chrono::{DateTime, Utc};
use lapin::types::{AMQPValue, FieldTable};
use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change of [`WebhookEnvelope`].
pub const SCHEMA_VERSION: u32 = 1;

/// AMQP header names (docs/messages.md).
pub const HEADER_REQUEST_ID: &str = "x-request-id";
pub const HEADER_EVENT_TYPE: &str = "x-whereby-event-type";
/// How many delayed retries the worker has already given this message.
pub const HEADER_ATTEMPT: &str = "x-retry-attempt";
/// How often `whereby-ops dlq replay` has put this message back.
pub const HEADER_REPLAYS: &str = "x-dlq-replays";

/// What webhook-ingest publishes for every accepted webhook: the event exactly as
/// Whereby sent it, when and under which request id we received it. `E` is how the
/// event is held: parsed (`serde_json::Value`, the consumer's view) or the bytes as
/// received (`&RawValue`: ingest copies them into the envelope without parsing
/// them into a tree and writing them out again); the wire format is the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookEnvelope<E = serde_json::Value> {
    pub schema_version: u32,
    pub received_at: DateTime<Utc>,
    #[serde(default)]
    pub request_id: Option<String>,
    pub event: E,
}

pub fn header_str<'a>(headers: Option<&'a FieldTable>, name: &str) -> Option<&'a str> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

pub fn header_u32(headers: Option<&FieldTable>, name: &str) -> Option<u32> {
    match headers?.inner().get(name)? {
        AMQPValue::LongUInt(n) => Some(*n),
        AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
        AMQPValue::ShortInt(n) => u32::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(u32::from(*n)),
        _ => None,
    }
}

/// The hand-off to the processing pipeline (routing key `recording.ready`): one
/// recording in our bucket, matched to its meeting. Delivered at least once;
/// consumers deduplicate on `recording_id` (also the AMQP `message_id`). Ids are
/// UUIDs as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingReady {
    pub schema_version: u32,
    pub recording_id: String,
    pub bucket: String,
    pub key: String,
    pub size_bytes: i64,
    #[serde(default)]
    pub content_type: Option<String>,
    pub meeting_id: String,
    pub whereby_meeting_id: String,
    #[serde(default)]
    pub room_id: Option<String>,
    /// Whereby's room name, with its leading `/`.
    pub room_name: String,
    /// The room owner's user id.
    pub owner: String,
    pub recorded_at: DateTime<Utc>,
}
