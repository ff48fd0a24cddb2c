use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use db::rooms::{self, NewRoom, RoomChanges};
use domain::{Platform, RecordingTrigger, RecordingType, RoomMode, RoomName, RoomSettings};
use serde::Deserialize;
use utoipa::ToSchema;
use web_common::ApiError;

use super::views::{RoomPage, RoomView};
use crate::{
    access::{self, Access, RoomKey},
    auth::Caller,
    errors::{self, ErrorCode},
    json::Json,
    state::AppState,
};

/// `POST /v1/rooms`. Omitted settings take the Whereby guide's defaults; `null` is
/// refused (leave the field out instead).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    #[schema(value_type = RoomName)]
    pub name: String,
    /// Default `whereby`.
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub platform: Option<Platform>,
    /// Default `cloud`.
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub recording_type: Option<RecordingType>,
    /// Default `automatic-2nd-participant`.
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub recording_trigger: Option<RecordingTrigger>,
    /// Default `false`.
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub is_locked: Option<bool>,
    /// Default `normal`.
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub room_mode: Option<RoomMode>,
    /// Visible (read-only) to every authenticated caller. Default `false`.
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub is_shared: Option<bool>,
}

/// `PATCH /v1/rooms/{room}`: only the fields sent change; `null` is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(value_type = Option<RoomName>, nullable = false)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub platform: Option<Platform>,
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub recording_type: Option<RecordingType>,
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub recording_trigger: Option<RecordingTrigger>,
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub is_locked: Option<bool>,
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub room_mode: Option<RoomMode>,
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub is_shared: Option<bool>,
}

fn name_taken(e: &db::QueryError) -> bool {
    db::unique_violation(e) == Some("rooms_name_key")
}

#[utoipa::path(post, path = "/v1/rooms", request_body = CreateRoom, tag = "rooms",
    responses((status = 201, description = "the room", body = RoomView,
               headers(("location" = String, description = "the room's URL, by id"))),
              (status = 409, description = "the name is taken (`room_name_taken`)"),
              (status = 422, description = "a field breaks a rule, or is `null`")))]
pub async fn create_room(
    state: web::Data<AppState>,
    caller: Caller,
    Json(body): Json<CreateRoom>,
) -> Result<HttpResponse, ApiError> {
    let name = RoomName::parse(&body.name).map_err(|e| ApiError::validation(e.field, e.message))?;
    let defaults = RoomSettings::default();
    let settings = RoomSettings {
        platform: body.platform.unwrap_or(defaults.platform),
        recording_type: body.recording_type.unwrap_or(defaults.recording_type),
        recording_trigger: body.recording_trigger.unwrap_or(defaults.recording_trigger),
        is_locked: body.is_locked.unwrap_or(defaults.is_locked),
        room_mode: body.room_mode.unwrap_or(defaults.room_mode),
    };
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let new = NewRoom::new(
        name.as_str(),
        caller.id(),
        &settings,
        body.is_shared.unwrap_or(false),
    );
    let row = rooms::insert(&mut conn, &new).await.map_err(|e| {
        if name_taken(&e) {
            ApiError::conflict(
                ErrorCode::RoomNameTaken.as_str(),
                format!("a room named {name} already exists"),
            )
        } else {
            errors::query(e)
        }
    })?;
    tracing::info!(room = %row.name, room_id = %row.id, "created room");
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/v1/rooms/{}", row.id)))
        .json(RoomView::from_row(row)?))
}

#[utoipa::path(get, path = "/v1/rooms", tag = "rooms",
    params(super::PageParams),
    responses((status = 200, description = "the rooms the caller owns, and shared ones, newest first", body = RoomPage),
              (status = 400, description = "the query string is malformed (`invalid_query`)"),
              (status = 422, description = "`page` or `size` out of range")))]
pub async fn list_rooms(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (_, page) = super::list_query(&req)?;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let (rows, total) = rooms::list_visible(&mut conn, caller.id(), page)
        .await
        .map_err(errors::query)?;
    let items = rows
        .into_iter()
        .map(RoomView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(RoomPage {
        items,
        total,
        page: page.page,
        size: page.size,
        pages: page.pages(total),
    }))
}

#[utoipa::path(get, path = "/v1/rooms/{room}", tag = "rooms", params(super::RoomParam),
    responses((status = 200, description = "the room", body = RoomView),
              (status = 404, description = "no room with that id or name, or one the caller cannot see")))]
pub async fn get_room(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let room = access::room(&mut conn, &RoomKey::parse(&room), &caller, Access::See).await?;
    Ok(HttpResponse::Ok().json(RoomView::from_row(room)?))
}

/// Deprecated alias of `GET /v1/rooms/{room}`, which takes a name as well as an id.
#[utoipa::path(get, path = "/v1/rooms/name/{name}", tag = "rooms",
    params(("name" = String, Path, description = "the room's name", min_length = 1)),
    responses((status = 200, description = "the room", body = RoomView),
              (status = 404, description = "no room with that name, or one the caller cannot see")))]
#[deprecated = "use GET /v1/rooms/{room}, which takes a name as well as an id"]
pub async fn get_room_by_name(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    // By name only, whatever it looks like: a room named before names could not
    // be UUIDs stays reachable here. Only text a name could be is looked up.
    let plausible = name.len() <= domain::room::ROOM_NAME_MAX_LEN
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let room = if plausible {
        rooms::find_by_name(&mut conn, &name)
            .await
            .map_err(errors::query)?
    } else {
        None
    };
    let room = room
        .filter(|r| access::sees_room(r, &caller))
        .ok_or_else(|| RoomKey::Neither(name.to_string()).not_found())?;
    Ok(HttpResponse::Ok().json(RoomView::from_row(room)?))
}

#[utoipa::path(patch, path = "/v1/rooms/{room}", tag = "rooms", params(super::RoomParam),
    request_body = UpdateRoom,
    responses((status = 200, description = "the room as changed", body = RoomView),
              (status = 403, description = "the room is shared, but the caller does not own it"),
              (status = 404, description = "no room with that id or name, or one the caller cannot see"),
              (status = 409, description = "the new name is taken (`room_name_taken`)"),
              (status = 422, description = "a field breaks a rule, or is `null`")))]
pub async fn update_room(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<String>,
    Json(body): Json<UpdateRoom>,
) -> Result<HttpResponse, ApiError> {
    let name = body
        .name
        .as_deref()
        .map(RoomName::parse)
        .transpose()
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let key = RoomKey::parse(&room);
    let room = access::room(&mut conn, &key, &caller, Access::Own("change it")).await?;
    let changes = RoomChanges {
        name: name.as_ref().map(RoomName::as_str),
        is_locked: body.is_locked,
        room_mode: body.room_mode.map(RoomMode::as_str),
        recording_type: body.recording_type.map(RecordingType::as_str),
        recording_trigger: body.recording_trigger.map(RecordingTrigger::as_str),
        is_shared: body.is_shared,
        platform: body.platform.map(Platform::as_str),
        updated_at: Some(Utc::now()),
    };
    let row = rooms::update(&mut conn, room.id, &changes)
        .await
        .map_err(|e| {
            if name_taken(&e) {
                ApiError::conflict(
                    ErrorCode::RoomNameTaken.as_str(),
                    "a room with that name already exists",
                )
            } else if matches!(e, db::QueryError::NotFound) {
                // Deleted since it was read.
                key.not_found()
            } else {
                errors::query(e)
            }
        })?;
    Ok(HttpResponse::Ok().json(RoomView::from_row(row)?))
}

#[utoipa::path(delete, path = "/v1/rooms/{room}", tag = "rooms", params(super::RoomParam),
    responses((status = 204, description = "deleted; its meetings ended"),
              (status = 403, description = "the room is shared, but the caller does not own it"),
              (status = 404, description = "no room with that id or name, or one the caller cannot see")))]
pub async fn delete_room(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    use db::AsyncConnection;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let id = access::room(
        &mut conn,
        &RoomKey::parse(&room),
        &caller,
        Access::Own("change it"),
    )
    .await?
    .id;
    // The room's live meetings end with it; they stay in the table (room_id NULL)
    // so that webhooks and recordings for them can still be matched.
    let ended = conn
        .transaction::<_, db::QueryError, _>(async |conn| {
            let ended = db::meetings::deactivate_all_for_room(conn, id).await?;
            rooms::delete(conn, id).await?;
            Ok(ended)
        })
        .await
        .map_err(errors::query)?;
    for meeting in ended {
        if let Err(e) = state
            .whereby
            .delete_meeting(&meeting.whereby_meeting_id)
            .await
        {
            tracing::warn!(meeting = %meeting.id, error = %e, "could not delete the meeting at Whereby; it expires at its end date");
        }
    }
    tracing::info!(room_id = %id, "deleted room");
    Ok(HttpResponse::NoContent().finish())
}
