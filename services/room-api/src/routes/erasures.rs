//! `POST /v1/erasures`: an operator erases one person's or one meeting's personal
//! data (docs/operations.md, "Personal data"). Operators only; idempotent; every
//! call is audited without the erased data.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use web_common::{ApiError, JsonBody};

use crate::{auth::Caller, startup::AppState};

/// Whom to erase: exactly one of the three.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// A person by Whereby's `externalId` (the id our product gave them).
    pub external_id: Option<String>,
    /// A person by Whereby's `participantId`, in any meeting.
    pub participant_id: Option<String>,
    /// A whole meeting: its participants, its webhook payloads, its recordings.
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

#[utoipa::path(post, path = "/v1/erasures", request_body = ErasureRequest,
    responses((status = 200, body = ErasureView, description = "erased (or nothing was left to erase)"),
              (status = 403, description = "operators only"),
              (status = 422, description = "not exactly one subject"),
              (status = 503, description = "the database is unavailable; retry")),
    security(("bearer" = [])))]
pub async fn erase(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<ErasureRequest>,
) -> Result<HttpResponse, ApiError> {
    if !state.operator_subjects.iter().any(|s| s == caller.id()) {
        return Err(ApiError::forbidden(
            "erasing personal data is for operators",
        ));
    }
    let r = body.0;
    let text = |field: &str, v: String| {
        if v.is_empty() || v.len() > MAX_ID_LEN {
            Err(ApiError::validation(field, "must be 1 to 255 characters"))
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
                    "database_unavailable",
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
