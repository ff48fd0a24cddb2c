//! Whereby webhook events: the envelope every event shares, the payloads whose
//! effects we apply, and the rules for applying them.
//!
//! Whereby may deliver an event more than once and out of order, so every effect
//! is defined to converge: state moves only forward in event time, ordered by
//! `(createdAt, id)`; earliest joins and latest leaves are kept as min and max.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The fields every webhook has. Unknown fields are ignored (Whereby adds fields
/// within a version).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHeader {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub api_version: Option<String>,
}

impl EventHeader {
    /// The header of a parsed event, if it has a valid one: ingest's check at the
    /// door and the worker's, one rule.
    pub fn of_event(event: &serde_json::Value) -> Option<Self> {
        Self::deserialize(event).ok().filter(Self::is_valid)
    }

    /// Event ids are opaque strings; we only bound them.
    pub fn is_valid(&self) -> bool {
        !self.id.is_empty()
            && self.id.len() <= 200
            && !self.event_type.is_empty()
            && self.event_type.len() <= 200
    }
}

/// The event types whose effects we apply; everything else is kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ClientJoined,
    ClientLeft,
    SessionStarted,
    SessionEnded,
    /// A cloud recording was uploaded: converges with the S3 notification.
    RecordingFinished,
    /// Known or not, stored in the inbox without effects (for now).
    Other,
}

impl EventKind {
    pub fn of(event_type: &str) -> Self {
        match event_type {
            "room.client.joined" => Self::ClientJoined,
            "room.client.left" => Self::ClientLeft,
            "room.session.started" => Self::SessionStarted,
            "room.session.ended" => Self::SessionEnded,
            "recording.finished" => Self::RecordingFinished,
            _ => Self::Other,
        }
    }
}

/// What an event says, typed by its `type` and parsed once, at the worker's door.
#[derive(Debug, Clone)]
pub enum EventBody {
    ClientJoined(ClientEventData),
    ClientLeft(ClientEventData),
    SessionStarted {
        room_session_id: String,
    },
    SessionEnded {
        room_session_id: String,
    },
    RecordingFinished(RecordingFinishedData),
    /// A type we act on whose `data` did not parse: why (bounded: serde's messages
    /// can quote the offending value).
    Unrecognised(String),
    /// `room.client.knocked`, `transcription.*` and any type Whereby adds: stored
    /// in the inbox, no effects (yet).
    Other,
}

impl EventBody {
    /// `data` read as the body of an event of type `event_type`.
    pub fn parse(event_type: &str, data: serde_json::Value) -> Self {
        let unrecognised = |why: String| Self::Unrecognised(why.chars().take(300).collect());
        match EventKind::of(event_type) {
            EventKind::RecordingFinished => match serde_json::from_value(data) {
                Ok(d) => Self::RecordingFinished(d),
                Err(e) => unrecognised(format!("recording.finished data: {e}")),
            },
            kind @ (EventKind::ClientJoined | EventKind::ClientLeft) => {
                match serde_json::from_value(data) {
                    Ok(d) if kind == EventKind::ClientJoined => Self::ClientJoined(d),
                    Ok(d) => Self::ClientLeft(d),
                    Err(e) => unrecognised(format!("client event data: {e}")),
                }
            }
            kind @ (EventKind::SessionStarted | EventKind::SessionEnded) => {
                match serde_json::from_value::<SessionEventData>(data) {
                    Ok(SessionEventData {
                        room_session_id: Some(room_session_id),
                        ..
                    }) => match kind {
                        EventKind::SessionStarted => Self::SessionStarted { room_session_id },
                        _ => Self::SessionEnded { room_session_id },
                    },
                    Ok(_) => unrecognised("session event without a roomSessionId".to_owned()),
                    Err(e) => unrecognised(format!("session event data: {e}")),
                }
            }
            EventKind::Other => Self::Other,
        }
    }

    /// Whether its effects need its meeting to be known (`data.meetingId`): an
    /// event that beats room-api's commit waits for it.
    pub fn needs_meeting(&self) -> bool {
        matches!(
            self,
            Self::ClientJoined(_)
                | Self::ClientLeft(_)
                | Self::SessionStarted { .. }
                | Self::SessionEnded { .. }
        )
    }
}

/// `data` of `room.client.joined` / `room.client.left`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientEventData {
    pub meeting_id: String,
    pub participant_id: String,
    #[serde(default)]
    pub room_session_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub role_name: Option<String>,
    /// Clients in the room after the event, every role included.
    #[serde(default)]
    pub num_clients: Option<i64>,
    #[serde(default)]
    pub num_clients_by_role_name: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// `data` of `room.session.started` / `room.session.ended`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEventData {
    pub meeting_id: String,
    #[serde(default)]
    pub room_session_id: Option<String>,
}

/// `data` of `recording.finished`. `roomName` is documented but was missing from
/// real payloads; the file name says it all.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingFinishedData {
    pub filename: String,
    #[serde(default)]
    pub recording_id: Option<String>,
}

/// The meeting an event concerns, when its `data` names one.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingRef {
    #[serde(default)]
    pub meeting_id: Option<String>,
}

/// The event types Whereby documents, as a bounded metrics label: anything else is
/// `other`, so that a sender cannot grow the label set.
pub fn type_label(event_type: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "room.client.joined",
        "room.client.left",
        "room.client.knocked",
        "room.client.knockCancelled",
        "room.session.started",
        "room.session.ended",
        "recording.finished",
        "transcription.started",
        "transcription.finished",
        "transcription.failed",
        "assistant.requested",
    ];
    KNOWN
        .iter()
        .find(|k| **k == event_type)
        .copied()
        .unwrap_or("other")
}

/// Roles that are machines, not people: tracked, but not counted as people.
pub fn is_person(role_name: Option<&str>) -> bool {
    !matches!(
        role_name,
        Some("recorder" | "streamer" | "captioner" | "assistant")
    )
}

/// People in the room after the event: Whereby's `numClients` minus the machine
/// roles of `numClientsByRoleName`, never negative.
pub fn people_in_room(num_clients: i64, by_role: Option<&BTreeMap<String, i64>>) -> i64 {
    let machines: i64 = by_role
        .into_iter()
        .flatten()
        .filter(|(role, _)| !is_person(Some(role)))
        .map(|(_, n)| (*n).max(0))
        .sum();
    (num_clients - machines).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_are_not_people() {
        let by_role = BTreeMap::from([
            ("host".to_owned(), 1),
            ("recorder".to_owned(), 1),
            ("visitor".to_owned(), 2),
        ]);
        assert_eq!(people_in_room(4, Some(&by_role)), 3);
        assert_eq!(people_in_room(0, Some(&by_role)), 0);
        assert_eq!(people_in_room(2, None), 2);
        assert!(!is_person(Some("recorder")));
        assert!(is_person(Some("granted_visitor")));
        assert!(is_person(None));
    }

    #[test]
    fn headers_parse_with_or_without_milliseconds_and_ignore_unknown_fields() {
        for created in ["2030-01-01T09:05:12Z", "2030-01-01T09:05:12.481Z"] {
            let h: EventHeader = serde_json::from_str(&format!(
                r#"{{"id":"e1","type":"x.y","createdAt":"{created}","apiVersion":"1.0","new":1}}"#
            ))
            .expect("parse");
            assert!(h.is_valid());
        }
        assert_eq!(EventKind::of("room.client.joined"), EventKind::ClientJoined);
        assert_eq!(
            EventKind::of("recording.finished"),
            EventKind::RecordingFinished
        );
        assert_eq!(EventKind::of("transcription.finished"), EventKind::Other);
    }
}
