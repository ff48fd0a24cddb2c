//! HTTP routes, all JSON, under `/v1`, plus `/healthz`, `/readyz`, `/metrics`.

pub mod branding;
pub mod erasures;
mod health;
pub mod meetings;
pub mod recordings;
pub mod rooms;

use actix_web::web;
use chrono::{DateTime, Utc};
use db::{meetings::MeetingRow, rooms::RoomRow};
use domain::{Platform, RecordingTrigger, RecordingType, RoomMode};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use web_common::ApiError;

use crate::errors;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(web_common::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/v1/openapi.json", web::get().to(crate::openapi::serve))
        .service(
            web::scope("/v1")
                .route("/rooms", web::post().to(rooms::create_room))
                .route("/rooms", web::get().to(rooms::list_rooms))
                .route("/rooms/name/{name}", web::get().to(rooms::get_room_by_name))
                .route("/rooms/{id}", web::get().to(rooms::get_room))
                .route("/rooms/{id}", web::patch().to(rooms::update_room))
                .route("/rooms/{id}", web::delete().to(rooms::delete_room))
                .route(
                    "/rooms/{id}/branding",
                    web::get().to(branding::get_branding),
                )
                .route(
                    "/rooms/{id}/branding",
                    web::put().to(branding::put_branding),
                )
                .route(
                    "/rooms/{id}/branding/{slot}",
                    web::put().to(branding::put_image),
                )
                .route(
                    "/rooms/{id}/branding/{slot}",
                    web::get().to(branding::get_image),
                )
                .route(
                    "/rooms/{id}/branding/{slot}",
                    web::delete().to(branding::delete_image),
                )
                .route(
                    "/rooms/{name}/meeting",
                    web::post().to(meetings::create_meeting_for_room),
                )
                .route(
                    "/rooms/{name}/meetings/active",
                    web::get().to(meetings::list_active_meetings),
                )
                .route(
                    "/rooms/{name}/meetings/{id}/join",
                    web::post().to(meetings::join_meeting),
                )
                .route("/meetings/{id}", web::get().to(meetings::get_meeting))
                .route(
                    "/meetings/{id}/participants",
                    web::get().to(meetings::list_participants),
                )
                .route(
                    "/meetings/{id}/sessions",
                    web::get().to(meetings::list_sessions),
                )
                .route(
                    "/meetings/{id}/recordings",
                    web::get().to(recordings::list_meeting_recordings),
                )
                .route("/recordings", web::get().to(recordings::list_recordings))
                .route("/erasures", web::post().to(erasures::erase))
                .route("/recordings/{id}", web::get().to(recordings::get_recording))
                .route(
                    "/internal/recordings/{id}/status",
                    web::post().to(recordings::report_status),
                )
                .route(
                    "/meetings/{id}/deactivate",
                    web::patch().to(meetings::deactivate_meeting),
                ),
        )
        .default_service(web::to(web_common::not_found));
}

/// A room as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomView {
    pub id: Uuid,
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
    pub branding: Option<BrandingState>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandingState {
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl MeetingView {
    pub fn for_caller(row: MeetingRow, caller: &str) -> Result<Self, ApiError> {
        let s = row.settings().map_err(errors::corrupt)?;
        let is_owner = row.owner == caller;
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

/// A list route's query string: its parameters, and the page they ask for
/// (`page` 1-based, `size` 1-100; 422 naming the parameter otherwise).
pub(crate) fn list_query(
    req: &actix_web::HttpRequest,
) -> Result<
    (
        std::collections::BTreeMap<String, String>,
        domain::PageRequest,
    ),
    ApiError,
> {
    let query =
        web::Query::<std::collections::BTreeMap<String, String>>::from_query(req.query_string())
            .map_err(|_| ApiError::bad_request("invalid_query", "the query string is malformed"))?
            .into_inner();
    let number = |field: &str| -> Result<Option<i64>, ApiError> {
        query
            .get(field)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::validation(field, "must be a whole number"))
            })
            .transpose()
    };
    let page = domain::PageRequest::parse(number("page")?, number("size")?)
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    Ok((query, page))
}

/// Ids in paths are UUIDs; anything else cannot name a resource.
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(format!("no such {what}")))
}
