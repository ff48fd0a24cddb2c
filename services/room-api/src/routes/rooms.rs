use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use db::rooms::{self, NewRoom, RoomChanges};
use domain::{
    OwnerId, Platform, RecordingTrigger, RecordingType, RoomMode, RoomName, RoomSettings,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use web_common::{ApiError, JsonBody};

use super::{RoomView, parse_id};
use crate::{auth::Caller, errors, startup::AppState};

/// `POST /v1/rooms`. Omitted settings take the Whereby guide's defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// 1-38 lowercase letters and digits, single hyphens between them.
    #[schema(example = "team-standup")]
    pub name: String,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub recording_type: Option<RecordingType>,
    #[serde(default)]
    pub recording_trigger: Option<RecordingTrigger>,
    #[serde(default)]
    pub is_locked: Option<bool>,
    #[serde(default)]
    pub room_mode: Option<RoomMode>,
    #[serde(default)]
    pub is_shared: Option<bool>,
}

/// `PATCH /v1/rooms/{id}`: only the fields sent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub recording_type: Option<RecordingType>,
    #[serde(default)]
    pub recording_trigger: Option<RecordingTrigger>,
    #[serde(default)]
    pub is_locked: Option<bool>,
    #[serde(default)]
    pub room_mode: Option<RoomMode>,
    #[serde(default)]
    pub is_shared: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomPage {
    pub items: Vec<RoomView>,
    pub total: i64,
    pub page: u32,
    pub size: u32,
    pub pages: i64,
}

fn name_taken(e: &db::QueryError) -> bool {
    db::unique_violation(e) == Some("rooms_name_key")
}

#[utoipa::path(post, path = "/v1/rooms", request_body = CreateRoom,
    responses((status = 201, body = RoomView), (status = 409, description = "name taken"),
              (status = 422, description = "invalid field")),
    security(("bearer" = [])))]
pub async fn create_room(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateRoom>,
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
                "room_name_taken",
                format!("a room named {name} already exists"),
            )
        } else {
            errors::query(e)
        }
    })?;
    tracing::info!(room = %row.name, room_id = %row.id, "created room");
    Ok(HttpResponse::Created().json(RoomView::from_row(row)?))
}

#[utoipa::path(get, path = "/v1/rooms",
    params(("page" = Option<u32>, Query, description = "1-based page"),
           ("size" = Option<u32>, Query, description = "1-100, default 50")),
    responses((status = 200, body = RoomPage)), security(("bearer" = [])))]
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

#[utoipa::path(get, path = "/v1/rooms/{id}", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = RoomView), (status = 404)), security(("bearer" = [])))]
pub async fn get_room(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "room")?;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let room = rooms::find(&mut conn, id)
        .await
        .map_err(errors::query)?
        .filter(|r| r.visible_to(caller.id()))
        .ok_or_else(|| ApiError::not_found("no such room"))?;
    Ok(HttpResponse::Ok().json(RoomView::from_row(room)?))
}

#[utoipa::path(get, path = "/v1/rooms/name/{name}", params(("name" = String, Path)),
    responses((status = 200, body = RoomView), (status = 404)), security(("bearer" = [])))]
pub async fn get_room_by_name(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let room = rooms::find_by_name(&mut conn, &name)
        .await
        .map_err(errors::query)?
        .filter(|r| r.visible_to(caller.id()))
        .ok_or_else(|| ApiError::not_found("no such room"))?;
    Ok(HttpResponse::Ok().json(RoomView::from_row(room)?))
}

/// Finds a room the caller owns: 404 when they cannot see it, 403 when they can
/// (it is shared) but do not own it.
pub(crate) async fn owned_room(
    conn: &mut db::AsyncPgConnection,
    id: uuid::Uuid,
    caller: &OwnerId,
) -> Result<rooms::RoomRow, ApiError> {
    let room = rooms::find(conn, id)
        .await
        .map_err(errors::query)?
        .filter(|r| r.visible_to(caller.as_str()))
        .ok_or_else(|| ApiError::not_found("no such room"))?;
    if room.owner != caller.as_str() {
        return Err(ApiError::forbidden("only the room's owner may change it"));
    }
    Ok(room)
}

#[utoipa::path(patch, path = "/v1/rooms/{id}", params(("id" = uuid::Uuid, Path)),
    request_body = UpdateRoom,
    responses((status = 200, body = RoomView), (status = 403), (status = 404), (status = 409),
              (status = 422)), security(("bearer" = [])))]
pub async fn update_room(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(body): JsonBody<UpdateRoom>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "room")?;
    let name = body
        .name
        .as_deref()
        .map(RoomName::parse)
        .transpose()
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let room = owned_room(&mut conn, id, &caller.0).await?;
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
                ApiError::conflict("room_name_taken", "a room with that name already exists")
            } else {
                errors::query(e)
            }
        })?;
    Ok(HttpResponse::Ok().json(RoomView::from_row(row)?))
}

#[utoipa::path(delete, path = "/v1/rooms/{id}", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn delete_room(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    use db::AsyncConnection;
    let id = parse_id(&id, "room")?;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    owned_room(&mut conn, id, &caller.0).await?;
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
