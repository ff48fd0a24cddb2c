//! Erasure of personal data (docs/operations.md, "Personal data"): one person by
//! Whereby's `externalId` or `participantId`, or one meeting with its recordings.
//! The database part is one transaction; the recordings are deleted from the
//! bucket after it and marked `erased` one by one, so a failed delete is simply
//! done again by the next call. Every call leaves an audit row with counts only.

pub use db::privacy::Subject;
use db::{AsyncConnection, DbPool, QueryError};

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReport {
    /// The audit row.
    pub id: uuid::Uuid,
    pub subject_kind: &'static str,
    pub participants_erased: i64,
    pub events_reduced: i64,
    pub recordings_erased: i64,
    /// Recordings whose object could not be deleted now: call again.
    pub recordings_left: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("no database connection: {0}")]
    Pool(String),
    #[error("database: {0}")]
    Database(#[from] QueryError),
}

impl ErasureError {
    /// Whether trying again later can succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Database(e) => db::is_unavailable(e),
        }
    }
}

/// Erases `subject`'s personal data; `requested_by` is who asked (a token's
/// subject, an operator's name). Idempotent.
pub async fn erase(
    pool: &DbPool,
    s3: &storage::aws_sdk_s3::Client,
    subject: &Subject,
    requested_by: &str,
) -> Result<ErasureReport, ErasureError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ErasureError::Pool(e.to_string()))?;
    let (participants_erased, events_reduced) = conn
        .transaction::<_, QueryError, _>(async |conn| db::privacy::erase_rows(conn, subject).await)
        .await?;
    let (mut recordings_erased, mut recordings_left) = (0, 0);
    if let Subject::Meeting(meeting) = subject {
        for (id, bucket, key) in db::privacy::recordings_to_erase(&mut conn, *meeting).await? {
            match storage::delete_object(s3, &bucket, &key).await {
                Ok(()) => {
                    db::privacy::mark_recording_erased(&mut conn, id).await?;
                    recordings_erased += 1;
                }
                Err(e) => {
                    tracing::warn!(recording = %id, error = %e, "could not delete a recording to erase; it is left for the next call");
                    recordings_left += 1;
                }
            }
        }
    }
    let id = db::privacy::audit(
        &mut conn,
        requested_by,
        subject,
        (participants_erased, events_reduced, recordings_erased),
    )
    .await?;
    tracing::info!(erasure = %id, kind = subject.kind(), participants_erased, events_reduced, recordings_erased, recordings_left, "personal data erased");
    Ok(ErasureReport {
        id,
        subject_kind: subject.kind(),
        participants_erased,
        events_reduced,
        recordings_erased,
        recordings_left,
    })
}
