//! Registering a recording file: what S3 says about it (HEAD), what its name says
//! (room, start), which meeting it belongs to, one row per (bucket, key), and the
//! hand-off to the pipeline. Used by the SQS poller and the catch-up scan alike.

use std::time::Duration;

use db::{
    DbPool,
    recordings::{self, RecordingRow},
};
use domain::recording::{NameProblem, parse_recording_key};
use messaging::{Publisher, RecordingReady, SCHEMA_VERSION};

use crate::metrics::WorkerMetrics;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Postgres, RabbitMQ or S3 unavailable: leave the work for later.
    #[error("{0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Not a video file: nothing to do.
    Ignored,
    /// The object is gone from the bucket (deleted since the notification).
    Gone,
    /// Stored; `handed_off` when this call confirmed the hand-off.
    Stored {
        recording_id: uuid::Uuid,
        status: String,
        handed_off: bool,
    },
}

#[derive(Clone)]
pub struct Intake {
    pub pool: DbPool,
    pub s3: storage::aws_sdk_s3::Client,
    pub publisher: Publisher,
    pub publish_timeout: Duration,
    pub metrics: WorkerMetrics,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> IntakeError {
    IntakeError::Unavailable(format!("{what}: {e}"))
}

impl Intake {
    /// Postgres answers and the broker is connected: worth taking work.
    pub async fn dependencies_ready(&self) -> bool {
        if !self.publisher.is_connected() {
            return false;
        }
        match self.pool.get().await {
            Ok(mut conn) => db::ping(&mut conn).await.is_ok(),
            Err(_) => false,
        }
    }

    /// Registers one object; idempotent.
    pub async fn register(&self, bucket: &str, key: &str) -> Result<Registered, IntakeError> {
        let parsed = parse_recording_key(key);
        if parsed == Err(NameProblem::NotARecording) {
            return Ok(Registered::Ignored);
        }
        let info = match storage::head_object(&self.s3, bucket, key).await {
            Ok(info) => info,
            Err(storage::StorageError::NotFound) => return Ok(Registered::Gone),
            Err(e) => return Err(unavailable("S3", e)),
        };
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| unavailable("Postgres", e))?;
        let facts = recordings::FileFacts {
            size_bytes: Some(info.size),
            content_type: info.content_type.as_deref(),
            etag: info.etag.as_deref(),
            whereby_recording_id: None,
        };
        let row = recordings::record_file(&mut conn, bucket, key, &facts)
            .await
            .map_err(|e| unavailable("Postgres", e))?;
        if row.status == "unmatched" {
            self.metrics
                .recordings
                .with_label_values(&["unmatched"])
                .inc();
            tracing::warn!(%bucket, %key, reason = ?row.unmatched_reason, "recording stored as unmatched");
        }
        // Only a confirmed publish is reported as a hand-off; a row left `uploaded`
        // is handed off by the next scan.
        let handed_off = row.ready_for_hand_off() && self.hand_off(&mut conn, &row).await?;
        Ok(Registered::Stored {
            recording_id: row.id,
            status: if handed_off {
                "queued".to_owned()
            } else {
                row.status
            },
            handed_off,
        })
    }

    /// Publishes `recording.ready` (confirmed), then marks the row `queued`; `true`
    /// only then. `false`: nothing was published (no meeting or size any more), the
    /// row is unchanged. A crash between publish and mark publishes it again later:
    /// the pipeline deduplicates on the id.
    pub async fn hand_off(
        &self,
        conn: &mut db::AsyncPgConnection,
        row: &RecordingRow,
    ) -> Result<bool, IntakeError> {
        let (Some(meeting_id), Some(size)) = (row.meeting_id, row.size_bytes) else {
            return Ok(false);
        };
        let Some(ctx) = recordings::hand_off_context(conn, meeting_id)
            .await
            .map_err(|e| unavailable("Postgres", e))?
        else {
            tracing::warn!(recording = %row.id, "the recording's meeting is gone; not handed off");
            return Ok(false);
        };
        let message = RecordingReady {
            schema_version: SCHEMA_VERSION,
            recording_id: row.id.to_string(),
            bucket: row.bucket.clone(),
            key: row.object_key.clone(),
            size_bytes: size,
            content_type: row.content_type.clone(),
            meeting_id: meeting_id.to_string(),
            whereby_meeting_id: ctx.whereby_meeting_id,
            room_id: ctx.room_id.map(|r| r.to_string()),
            room_name: row.room_name.clone().unwrap_or_default(),
            owner: ctx.owner,
            recorded_at: row.recorded_at.unwrap_or(row.created_at),
        };
        self.publisher
            .publish_recording_ready(&message, self.publish_timeout)
            .await
            .map_err(|e| unavailable("RabbitMQ", e))?;
        recordings::mark_queued(conn, row.id)
            .await
            .map_err(|e| unavailable("Postgres", e))?;
        self.metrics.recordings.with_label_values(&["queued"]).inc();
        tracing::info!(recording = %row.id, key = %row.object_key, "recording handed to the pipeline");
        Ok(true)
    }
}
