use actix_web::{HttpRequest, HttpResponse, web};
use db::{
    AsyncConnection,
    recordings::{self, PipelineUpdate},
};
use domain::recording::RecordingStatus;
use serde::Deserialize;
use utoipa::ToSchema;
use web_common::ApiError;

use super::views::{RecordingPage, RecordingView};
use crate::{
    access::{self, Access, parse_id},
    auth::Caller,
    errors::{self, ErrorCode},
    json::Json,
    state::AppState,
};

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
    let meeting =
        access::meeting(&mut conn, &id, &caller, Access::Own("see who took part")).await?;
    let views = recordings::for_meeting(&mut conn, meeting.id)
        .await
        .map_err(errors::query)?
        .into_iter()
        .map(RecordingView::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(views))
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
    let row = access::recording(&mut conn, &id, &caller).await?;
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
    access::operator(&caller, "listing recordings")?;
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
              (status = 403, description = "the caller is not an internal service (docs/configuration.md, Identities)"),
              (status = 404, description = "no such recording"),
              (status = 409, description = "the status would go backwards (`status_conflict`)"),
              (status = 422, description = "`status` is missing, `null` or not one the pipeline reports")))]
pub async fn report_status(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    Json(report): Json<StatusReport>,
) -> Result<HttpResponse, ApiError> {
    access::service(&caller, "reporting recording status")?;
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
            tracing::info!(recording = %row.id, status = to.as_str(), caller = caller.id(), "pipeline reported status");
            Ok(HttpResponse::Ok().json(RecordingView::from_row(*row)?))
        }
    }
}
