use actix_web::{HttpResponse, web};
use chrono::Utc;
use db::meetings;
use web_common::ApiError;

use super::views::{MeetingView, ParticipantView, SessionView};
use crate::{
    access::{self, Access, RoomKey, parse_id},
    auth::Caller,
    errors::{self, ErrorCode},
    meetings::get_or_create,
    state::AppState,
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
    let result = get_or_create(state, &RoomKey::parse(&room), &caller).await?;
    let view = MeetingView::for_caller(result.meeting, &caller)?;
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
    let room = access::room(&mut conn, &RoomKey::parse(&room), &caller, Access::See).await?;
    let now = Utc::now();
    let views = meetings::active_for_room(&mut conn, room.id)
        .await
        .map_err(errors::query)?
        .into_iter()
        .filter(|m| m.end_date > now)
        .map(|m| MeetingView::for_caller(m, &caller))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(views))
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
    let meeting = access::meeting(&mut conn, &id, &caller, Access::See).await?;
    Ok(HttpResponse::Ok().json(MeetingView::for_caller(meeting, &caller)?))
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
    let room = access::room(&mut conn, &RoomKey::parse(&room), &caller, Access::See).await?;
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
    Ok(HttpResponse::Ok().json(MeetingView::for_caller(meeting, &caller)?))
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
    let meeting = access::meeting(&mut conn, &id, &caller, Access::Own("end its meetings")).await?;
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
    Ok(HttpResponse::Ok().json(MeetingView::for_caller(meeting, &caller)?))
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
    let meeting =
        access::meeting(&mut conn, &id, &caller, Access::Own("see who took part")).await?;
    let rows = db::events::participants(&mut conn, meeting.id)
        .await
        .map_err(errors::query)?;
    let views: Vec<ParticipantView> = rows.into_iter().map(ParticipantView::from).collect();
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
    let meeting =
        access::meeting(&mut conn, &id, &caller, Access::Own("see who took part")).await?;
    let rows = db::events::sessions(&mut conn, meeting.id)
        .await
        .map_err(errors::query)?;
    let views: Vec<SessionView> = rows.into_iter().map(SessionView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}
