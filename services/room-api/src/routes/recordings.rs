use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use db::{
    AsyncConnection,
    recordings::{self, PipelineUpdate, RecordingRow},
};
use domain::recording::RecordingStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use web_common::ApiError;

use super::{meetings::owned_meeting, parse_id};
use crate::{
    auth::Caller,
    errors::{self, ErrorCode},
    json::Json,
    startup::AppState,
};

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
    fn from_row(row: RecordingRow) -> Result<Self, ApiError> {
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

#[utoipa::path(get, path = "/v1/meetings/{id}/recordings", tag = "recordings",
    params(("id" = uuid::Uuid, Path, description = "the meeting's id")),
    responses((status = 200, description = "the meeting's recordings", body = [RecordingView]),
              (status = 403, description = "the meeting's room is shared, but the caller does not own it"),
              (status = 404, description = "no such meeting, or one the caller cannot see")))]
pub async fn list_meeting_recordings(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let meeting = owned_meeting(&mut conn, &id, &caller).await?;
    let views = recordings::for_meeting(&mut conn, meeting.id)
        .await
        .map_err(errors::query)?
        .into_iter()
        .map(RecordingView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(views))
}

/// The owner of a recording's meeting sees it; operators see every recording.
async fn visible_recording(
    conn: &mut db::AsyncPgConnection,
    state: &AppState,
    id: &str,
    caller: &Caller,
) -> Result<RecordingRow, ApiError> {
    let id = parse_id(id, "recording")?;
    let row = recordings::find(conn, id)
        .await
        .map_err(errors::query)?
        .ok_or_else(|| ApiError::not_found(format!("no recording with id '{id}'")))?;
    if state.operator_subjects.iter().any(|s| s == caller.id()) {
        return Ok(row);
    }
    let owner = match row.meeting_id {
        Some(meeting_id) => db::meetings::find(conn, meeting_id)
            .await
            .map_err(errors::query)?
            .map(|m| m.owner),
        None => None,
    };
    if owner.as_deref() == Some(caller.id()) {
        Ok(row)
    } else {
        Err(ApiError::not_found(format!("no recording with id '{id}'")))
    }
}

#[utoipa::path(get, path = "/v1/recordings/{id}", tag = "recordings",
    params(("id" = uuid::Uuid, Path, description = "the recording's id")),
    responses((status = 200, description = "the recording, with a short-lived `download_url` unless it was deleted", body = RecordingView),
              (status = 404, description = "no such recording, or one of a meeting the caller does not own (operators see all)")))]
pub async fn get_recording(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let row = visible_recording(&mut conn, &state, &id, &caller).await?;
    let (bucket, key, deleted) = (
        row.bucket.clone(),
        row.object_key.clone(),
        row.status == "deleted",
    );
    let mut view = RecordingView::from_row(row)?;
    if !deleted {
        match storage::presigned_get(&state.s3, &bucket, &key, state.download_url_valid_for).await {
            Ok(url) => view.download_url = Some(url),
            // The rest of the answer is still right; the URL can be asked for again.
            Err(e) => tracing::warn!(error = %e, "could not presign a download URL"),
        }
    }
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/recordings", tag = "recordings",
    params(("status" = Option<RecordingStatus>, Query, description = "default `unmatched`", nullable = false),
           super::PageParams),
    responses((status = 200, description = "recordings with that status, newest first", body = RecordingPage),
              (status = 400, description = "the query string is malformed (`invalid_query`)"),
              (status = 403, description = "operators only"),
              (status = 422, description = "`status`, `page` or `size` is not one of the values allowed")))]
pub async fn list_recordings(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.operator_subjects.iter().any(|s| s == caller.id()) {
        return Err(ApiError::forbidden("listing recordings is for operators"));
    }
    let (query, page) = super::list_query(&req)?;
    let status = match query.get("status") {
        None => RecordingStatus::Unmatched,
        Some(s) => RecordingStatus::parse(s).ok_or_else(|| {
            ApiError::validation(
                "status",
                "must be one of: unmatched, uploaded, queued, processing, done, failed, deleted, erased",
            )
        })?,
    };

    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let (rows, total) =
        recordings::with_status(&mut conn, status, i64::from(page.size), page.offset())
            .await
            .map_err(errors::query)?;
    let items = rows
        .into_iter()
        .map(RecordingView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(RecordingPage {
        items,
        total,
        page: page.page,
        size: page.size,
        pages: page.pages(total),
    }))
}

/// What the processing pipeline reports about a recording.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    #[schema(schema_with = reported_status_schema)]
    pub status: RecordingStatus,
}

/// The statuses the pipeline may report.
const REPORTED: [RecordingStatus; 3] = [
    RecordingStatus::Processing,
    RecordingStatus::Done,
    RecordingStatus::Failed,
];

fn reported_status_schema() -> utoipa::openapi::ObjectBuilder {
    super::string_schema().enum_values(Some(REPORTED.iter().map(|s| s.as_str())))
}

#[utoipa::path(post, path = "/v1/internal/recordings/{id}/status", tag = "internal",
    params(("id" = uuid::Uuid, Path, description = "the recording's id")),
    request_body = StatusReport,
    responses((status = 200, description = "the recording with its new status", body = RecordingView),
              (status = 403, description = "the caller is not a pipeline service (`AUTH_SERVICE_SUBJECTS`)"),
              (status = 404, description = "no such recording"),
              (status = 409, description = "the status would go backwards (`status_conflict`)"),
              (status = 422, description = "`status` is missing, `null` or not one the pipeline reports")))]
pub async fn report_status(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    Json(report): Json<StatusReport>,
) -> Result<HttpResponse, ApiError> {
    if !state.service_subjects.iter().any(|s| s == caller.id()) {
        return Err(ApiError::forbidden(
            "only the processing pipeline reports recording status",
        ));
    }
    if !REPORTED.contains(&report.status) {
        return Err(ApiError::validation(
            "status",
            "must be one of: processing, done, failed",
        ));
    }
    let id = parse_id(&id, "recording")?;
    let to = report.status;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let update = conn
        .transaction::<_, db::QueryError, _>(async |conn| {
            recordings::set_pipeline_status(conn, id, to).await
        })
        .await
        .map_err(errors::query)?;
    match update {
        PipelineUpdate::NotFound => {
            Err(ApiError::not_found(format!("no recording with id '{id}'")))
        }
        PipelineUpdate::Refused { current } => Err(ApiError::conflict(
            ErrorCode::StatusConflict.as_str(),
            format!(
                "a recording that is {current} cannot become {}",
                to.as_str()
            ),
        )),
        PipelineUpdate::Updated(row) => {
            tracing::info!(recording = %row.id, status = to.as_str(), service = caller.id(), "pipeline reported status");
            Ok(HttpResponse::Ok().json(RecordingView::from_row(*row)?))
        }
    }
}
