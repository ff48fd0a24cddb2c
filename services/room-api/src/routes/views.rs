//! What the API answers: rooms, meetings, who took part, and recordings, as the
//! public OpenAPI document describes them. Built from database rows here and
//! nowhere else.

use chrono::{DateTime, Utc};
use db::{
    events::{ParticipantRow, SessionRow},
    meetings::MeetingRow,
    recordings::RecordingRow,
    rooms::RoomRow,
};
use domain::{
    Platform, RecordingTrigger, RecordingType, RoomMode, RoomName, recording::RecordingStatus,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use web_common::ApiError;

use crate::{auth::Caller, errors};

/// A room as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomView {
    pub id: Uuid,
    #[schema(value_type = RoomName)]
    pub name: String,
    /// The owner's user id (the `sub` of the token that created the room).
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub platform: Platform,
    pub recording_type: RecordingType,
    pub recording_trigger: RecordingTrigger,
    pub is_locked: bool,
    pub room_mode: RoomMode,
    pub is_shared: bool,
}

impl RoomView {
    pub fn from_row(row: RoomRow) -> Result<Self, ApiError> {
        let s = row.settings().map_err(errors::corrupt)?;
        Ok(Self {
            id: row.id,
            name: row.name,
            owner: row.owner,
            created_at: row.created_at,
            updated_at: row.updated_at,
            platform: s.platform,
            recording_type: s.recording_type,
            recording_trigger: s.recording_trigger,
            is_locked: s.is_locked,
            room_mode: s.room_mode,
            is_shared: row.is_shared,
        })
    }
}

/// A meeting as the API shows it. `host_room_url` is present for the room's owner
/// only: whoever holds it becomes a host of the Whereby room.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingView {
    pub id: Uuid,
    pub room_id: Option<Uuid>,
    /// Whereby's `meetingId`.
    pub whereby_meeting_id: String,
    /// Whereby's room name, with its leading `/`.
    pub room_name: String,
    pub room_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub host_room_url: Option<String>,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    pub platform: Platform,
    pub recording_type: RecordingType,
    pub recording_trigger: RecordingTrigger,
    pub is_locked: bool,
    pub room_mode: RoomMode,
    /// Participants in the room, as Whereby's webhooks last reported.
    pub num_clients: i32,
    pub is_active: bool,
    /// Whether the room's branding reached Whereby: `applied`, `pending` (tried
    /// again in the background) or `failed`, with the reason; absent when the room
    /// has no branding.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub branding: Option<BrandingState>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandingState {
    /// `applied`, `pending` or `failed`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

impl MeetingView {
    /// `host_room_url` only for the meeting's owner.
    pub fn for_caller(row: MeetingRow, caller: &Caller) -> Result<Self, ApiError> {
        let s = row.settings().map_err(errors::corrupt)?;
        let is_owner = row.owner == caller.id();
        Ok(Self {
            id: row.id,
            room_id: row.room_id,
            whereby_meeting_id: row.whereby_meeting_id,
            room_name: row.room_name,
            room_url: row.room_url,
            host_room_url: row.host_room_url.filter(|_| is_owner),
            start_date: row.start_date,
            end_date: row.end_date,
            platform: s.platform,
            recording_type: s.recording_type,
            recording_trigger: s.recording_trigger,
            is_locked: s.is_locked,
            room_mode: s.room_mode,
            num_clients: row.num_clients,
            is_active: row.is_active,
            branding: row.branding_state.map(|state| BrandingState {
                state,
                reason: row.branding_error,
            }),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomPage {
    pub items: Vec<RoomView>,
    pub total: i64,
    pub page: u32,
    pub size: u32,
    pub pages: i64,
}

/// A participant of a meeting, as Whereby's webhooks last reported them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantView {
    pub participant_id: String,
    pub display_name: Option<String>,
    pub role_name: Option<String>,
    pub external_id: Option<String>,
    /// False for recorders and streamers: tracked, but not people in the room.
    pub is_person: bool,
    /// `joined` or `left`.
    pub state: String,
    pub room_session_id: Option<String>,
    pub first_joined_at: Option<DateTime<Utc>>,
    pub last_left_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub room_session_id: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A recording in our bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    pub id: Uuid,
    pub meeting_id: Option<Uuid>,
    pub status: RecordingStatus,
    pub bucket: String,
    pub key: String,
    pub size_bytes: Option<i64>,
    pub content_type: Option<String>,
    /// When Whereby started recording (from the file name).
    pub recorded_at: Option<DateTime<Utc>>,
    /// Whereby's room name, with its leading `/`.
    pub room_name: Option<String>,
    pub whereby_recording_id: Option<String>,
    /// Why no meeting matched, for unmatched recordings.
    pub unmatched_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    /// A time-limited GET URL for the file (single recording, owner only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub download_url: Option<String>,
}

impl RecordingView {
    pub fn from_row(row: RecordingRow) -> Result<Self, ApiError> {
        let status = row.status().ok_or_else(|| {
            errors::corrupt(domain::ValidationError::new("status", row.status.clone()))
        })?;
        Ok(Self {
            id: row.id,
            meeting_id: row.meeting_id,
            status,
            bucket: row.bucket,
            key: row.object_key,
            size_bytes: row.size_bytes,
            content_type: row.content_type,
            recorded_at: row.recorded_at,
            room_name: row.room_name,
            whereby_recording_id: row.whereby_recording_id,
            unmatched_reason: row.unmatched_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
            done_at: row.done_at,
            download_url: None,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingPage {
    pub items: Vec<RecordingView>,
    pub total: i64,
    pub page: u32,
    pub size: u32,
    pub pages: i64,
}

impl From<ParticipantRow> for ParticipantView {
    fn from(p: ParticipantRow) -> Self {
        Self {
            participant_id: p.participant_id,
            display_name: p.display_name,
            role_name: p.role_name,
            external_id: p.external_id,
            is_person: p.is_person,
            state: p.state,
            room_session_id: p.room_session_id,
            first_joined_at: p.first_joined_at,
            last_left_at: p.last_left_at,
        }
    }
}

impl From<SessionRow> for SessionView {
    fn from(s: SessionRow) -> Self {
        Self {
            room_session_id: s.room_session_id,
            started_at: s.started_at,
            ended_at: s.ended_at,
        }
    }
}
