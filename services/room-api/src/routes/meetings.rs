use actix_web::{HttpResponse, web};
use chrono::Utc;
use db::{meetings, rooms};
use web_common::ApiError;

use super::{MeetingView, RoomKey, parse_id, visible_room};
use crate::{
    auth::Caller,
    errors::{self, ErrorCode},
    meetings::get_or_create,
    startup::AppState,
};

#[utoipa::path(post, path = "/v1/rooms/{room}/meeting", tag = "meetings", params(super::RoomParam),
    responses((status = 201, description = "a new Whereby meeting", body = MeetingView),
              (status = 200, description = "the room's current meeting, reused", body = MeetingView),
              (status = 404, description = "no room with that id or name, or one the caller cannot see"),
              (status = 502, description = "Whereby failed (`whereby_unavailable`, `whereby_refused`, `whereby_rejected`, `whereby_invalid_response`)"),
              (status = 503, description = "Whereby throttled us (`whereby_throttled`), another request is creating the meeting (`busy`), the database is unavailable, or the request took too long; retry")))]
pub async fn create_meeting_for_room(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result = get_or_create(state, &RoomKey::parse(&room), caller.id()).await?;
    let view = MeetingView::for_caller(result.meeting, caller.id())?;
    Ok(if result.created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

#[utoipa::path(get, path = "/v1/rooms/{room}/meetings/active", tag = "meetings", params(super::RoomParam),
    responses((status = 200, description = "the room's active meetings that have not ended", body = [MeetingView]),
              (status = 404, description = "no room with that id or name, or one the caller cannot see")))]
pub async fn list_active_meetings(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let room = visible_room(&mut conn, &room, &caller).await?;
    let now = Utc::now();
    let views = meetings::active_for_room(&mut conn, room.id)
        .await
        .map_err(errors::query)?
        .into_iter()
        .filter(|m| m.end_date > now)
        .map(|m| MeetingView::for_caller(m, caller.id()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(views))
}

/// A meeting the caller may see: theirs, or one of a shared room.
async fn visible_meeting(
    conn: &mut db::AsyncPgConnection,
    id: &str,
    caller: &Caller,
) -> Result<meetings::MeetingRow, ApiError> {
    let id = parse_id(id, "meeting")?;
    let meeting = meetings::find(conn, id)
        .await
        .map_err(errors::query)?
        .ok_or_else(|| ApiError::not_found(format!("no meeting with id '{id}'")))?;
    if meeting.owner == caller.id() {
        return Ok(meeting);
    }
    let shared = match meeting.room_id {
        Some(room_id) => rooms::find(conn, room_id)
            .await
            .map_err(errors::query)?
            .is_some_and(|r| r.is_shared),
        None => false,
    };
    if shared {
        Ok(meeting)
    } else {
        Err(ApiError::not_found(format!("no meeting with id '{id}'")))
    }
}

#[utoipa::path(get, path = "/v1/meetings/{id}", tag = "meetings",
    params(("id" = uuid::Uuid, Path, description = "the meeting's id")),
    responses((status = 200, description = "the meeting (`host_room_url` for the room's owner only)", body = MeetingView),
              (status = 404, description = "no such meeting, or one the caller cannot see")))]
pub async fn get_meeting(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let meeting = visible_meeting(&mut conn, &id, &caller).await?;
    Ok(HttpResponse::Ok().json(MeetingView::for_caller(meeting, caller.id())?))
}

#[utoipa::path(post, path = "/v1/rooms/{room}/meetings/{id}/join", tag = "meetings",
    params(super::RoomParam, ("id" = uuid::Uuid, Path, description = "the meeting's id")),
    responses((status = 200, description = "the meeting, to join at its `room_url`", body = MeetingView),
              (status = 409, description = "the meeting is inactive (`meeting_inactive`) or has ended (`meeting_ended`)"),
              (status = 404, description = "no such room or no such meeting in it, or one the caller cannot see")))]
pub async fn join_meeting(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (room, id) = path.into_inner();
    let id = parse_id(&id, "meeting")?;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let room = visible_room(&mut conn, &room, &caller).await?;
    let meeting = meetings::find(&mut conn, id)
        .await
        .map_err(errors::query)?
        .filter(|m| m.room_id == Some(room.id))
        .ok_or_else(|| {
            ApiError::not_found(format!("no meeting with id '{id}' in room '{}'", room.name))
        })?;
    if !meeting.is_active {
        // 409: a well-formed request that the meeting's state refuses.
        return Err(ApiError::conflict(
            ErrorCode::MeetingInactive.as_str(),
            "the meeting is no longer active",
        ));
    }
    if meeting.end_date <= Utc::now() {
        return Err(ApiError::conflict(
            ErrorCode::MeetingEnded.as_str(),
            "the meeting has ended",
        ));
    }
    Ok(HttpResponse::Ok().json(MeetingView::for_caller(meeting, caller.id())?))
}

#[utoipa::path(patch, path = "/v1/meetings/{id}/deactivate", tag = "meetings",
    params(("id" = uuid::Uuid, Path, description = "the meeting's id")),
    responses((status = 200, description = "the meeting, ended here and at Whereby", body = MeetingView),
              (status = 403, description = "the meeting's room is shared, but the caller does not own it"),
              (status = 404, description = "no such meeting, or one the caller cannot see"),
              (status = 502, description = "Whereby failed; nothing changed, retry")))]
pub async fn deactivate_meeting(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let meeting = visible_meeting(&mut conn, &id, &caller).await?;
    if meeting.owner != caller.id() {
        return Err(ApiError::forbidden(
            "only the room's owner may end its meetings",
        ));
    }
    // Whereby first (idempotent there): if it fails, nothing has changed here and
    // the caller can simply retry.
    state
        .whereby
        .delete_meeting(&meeting.whereby_meeting_id)
        .await
        .map_err(|e| errors::whereby(&e))?;
    meetings::deactivate(&mut conn, &[meeting.id])
        .await
        .map_err(errors::query)?;
    let meeting = meetings::find(&mut conn, meeting.id)
        .await
        .map_err(errors::query)?
        .ok_or_else(|| ApiError::not_found("no such meeting"))?;
    tracing::info!(meeting = %meeting.id, "deactivated meeting");
    Ok(HttpResponse::Ok().json(MeetingView::for_caller(meeting, caller.id())?))
}

/// A participant of a meeting, as Whereby's webhooks last reported them.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
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
    pub first_joined_at: Option<chrono::DateTime<Utc>>,
    pub last_left_at: Option<chrono::DateTime<Utc>>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub room_session_id: String,
    pub started_at: Option<chrono::DateTime<Utc>>,
    pub ended_at: Option<chrono::DateTime<Utc>>,
}

/// The meeting, if the caller owns it (404 when they cannot see it, 403 when they
/// can but are not its owner).
pub(super) async fn owned_meeting(
    conn: &mut db::AsyncPgConnection,
    id: &str,
    caller: &Caller,
) -> Result<meetings::MeetingRow, ApiError> {
    let meeting = visible_meeting(conn, id, caller).await?;
    if meeting.owner != caller.id() {
        return Err(ApiError::forbidden(
            "only the room's owner may see who took part",
        ));
    }
    Ok(meeting)
}

#[utoipa::path(get, path = "/v1/meetings/{id}/participants", tag = "meetings",
    params(("id" = uuid::Uuid, Path, description = "the meeting's id")),
    responses((status = 200, description = "who took part, as Whereby's webhooks last reported", body = [ParticipantView]),
              (status = 403, description = "the meeting's room is shared, but the caller does not own it"),
              (status = 404, description = "no such meeting, or one the caller cannot see")))]
pub async fn list_participants(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let meeting = owned_meeting(&mut conn, &id, &caller).await?;
    let rows = db::events::participants(&mut conn, meeting.id)
        .await
        .map_err(errors::query)?;
    let views: Vec<ParticipantView> = rows
        .into_iter()
        .map(|p| ParticipantView {
            participant_id: p.participant_id,
            display_name: p.display_name,
            role_name: p.role_name,
            external_id: p.external_id,
            is_person: p.is_person,
            state: p.state,
            room_session_id: p.room_session_id,
            first_joined_at: p.first_joined_at,
            last_left_at: p.last_left_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(get, path = "/v1/meetings/{id}/sessions", tag = "meetings",
    params(("id" = uuid::Uuid, Path, description = "the meeting's id")),
    responses((status = 200, description = "the meeting's sessions (Whereby starts one when a second person joins)", body = [SessionView]),
              (status = 403, description = "the meeting's room is shared, but the caller does not own it"),
              (status = 404, description = "no such meeting, or one the caller cannot see")))]
pub async fn list_sessions(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let meeting = owned_meeting(&mut conn, &id, &caller).await?;
    let rows = db::events::sessions(&mut conn, meeting.id)
        .await
        .map_err(errors::query)?;
    let views: Vec<SessionView> = rows
        .into_iter()
        .map(|s| SessionView {
            room_session_id: s.room_session_id,
            started_at: s.started_at,
            ended_at: s.ended_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}
