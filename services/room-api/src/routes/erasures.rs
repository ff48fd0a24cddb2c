//! `POST /v1/erasures`: an operator erases one person's or one meeting's personal
//! data (docs/operations.md, "Personal data"). Operators only; idempotent; every
//! call is audited without the erased data.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use web_common::ApiError;

use crate::{access, auth::Caller, errors::ErrorCode, json::Json, state::AppState};

/// Whom to erase: exactly one of the three (`null` is refused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// A person by Whereby's `externalId` (the id our product gave them).
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00]+$"
    )]
    pub external_id: Option<String>,
    /// A person by Whereby's `participantId`, in any meeting.
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00]+$"
    )]
    pub participant_id: Option<String>,
    /// A whole meeting: its participants, its webhook payloads, its recordings.
    #[serde(default, deserialize_with = "crate::json::not_null")]
    #[schema(nullable = false)]
    pub meeting_id: Option<Uuid>,
}

/// What an erasure did (its audit row's id and counts).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    pub id: Uuid,
    pub subject_kind: String,
    pub participants_erased: i64,
    pub events_reduced: i64,
    pub recordings_erased: i64,
    /// Recordings whose object could not be deleted now; call again.
    pub recordings_left: i64,
}

const MAX_ID_LEN: usize = 255;

#[utoipa::path(post, path = "/v1/erasures", tag = "internal", request_body = ErasureRequest,
    responses((status = 200, body = ErasureView, description = "erased (or nothing was left to erase)"),
              (status = 403, description = "operators only (docs/configuration.md, Identities)"),
              (status = 422, description = "not exactly one subject, an id out of bounds, or a field `null`")))]
pub async fn erase(
    state: web::Data<AppState>,
    caller: Caller,
    Json(r): Json<ErasureRequest>,
) -> Result<HttpResponse, ApiError> {
    access::operator(&caller, "erasing personal data")?;
    let text = |field: &str, v: String| {
        // Characters, as the document's maxLength counts them; Postgres text cannot
        // hold NUL, so no stored id has one.
        if v.is_empty() || v.chars().count() > MAX_ID_LEN || v.contains('\0') {
            Err(ApiError::validation(
                field,
                "must be 1 to 255 characters, without NUL",
            ))
        } else {
            Ok(v)
        }
    };
    let subject = match (r.external_id, r.participant_id, r.meeting_id) {
        (Some(x), None, None) => privacy::Subject::ExternalId(text("external_id", x)?),
        (None, Some(p), None) => privacy::Subject::ParticipantId(text("participant_id", p)?),
        (None, None, Some(m)) => privacy::Subject::Meeting(m),
        _ => {
            return Err(ApiError::validation(
                "body",
                "give exactly one of external_id, participant_id, meeting_id",
            ));
        }
    };
    let report = privacy::erase(&state.pool, &state.s3, &subject, caller.id())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "erasure failed");
            if e.is_unavailable() {
                ApiError::unavailable(
                    ErrorCode::DatabaseUnavailable.as_str(),
                    "the database is unavailable; retry later",
                )
            } else {
                ApiError::internal()
            }
        })?;
    Ok(HttpResponse::Ok().json(ErasureView {
        id: report.id,
        subject_kind: report.subject_kind.to_owned(),
        participants_erased: report.participants_erased,
        events_reduced: report.events_reduced,
        recordings_erased: report.recordings_erased,
        recordings_left: report.recordings_left,
    }))
}
