//! Recordings: one row per (bucket, key), converging whichever source announced
//! the file first, and the status the pipeline reports.

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain::recording::{RecordingStatus, parse_recording_key};
use uuid::Uuid;

use crate::schema::{meetings, recordings};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = recordings, check_for_backend(diesel::pg::Pg))]
pub struct RecordingRow {
    pub id: Uuid,
    pub bucket: String,
    pub object_key: String,
    pub meeting_id: Option<Uuid>,
    pub room_name: Option<String>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub format: Option<String>,
    pub size_bytes: Option<i64>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub whereby_recording_id: Option<String>,
    pub status: String,
    pub unmatched_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub queued_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl RecordingRow {
    pub fn status(&self) -> Option<RecordingStatus> {
        RecordingStatus::parse(&self.status)
    }

    /// Ready for the pipeline: matched, seen in S3, not yet handed off.
    pub fn ready_for_hand_off(&self) -> bool {
        self.status == RecordingStatus::Uploaded.as_str()
            && self.meeting_id.is_some()
            && self.size_bytes.is_some()
    }
}

/// The meeting a recording belongs to: the one with this Whereby room name whose
/// time span holds the recording's start (with an hour's slack, as Whereby keeps
/// rooms an hour past their end), else the latest one with that name.
pub async fn meeting_for_recording(
    conn: &mut AsyncPgConnection,
    room_name: &str,
    recorded_at: DateTime<Utc>,
) -> QueryResult<Option<Uuid>> {
    meetings::table
        .filter(meetings::room_name.eq(room_name))
        .select(meetings::id)
        .order((
            diesel::dsl::sql::<diesel::sql_types::Bool>("")
                .bind::<Timestamptz, _>(recorded_at)
                .sql(
                    " BETWEEN start_date - interval '1 hour' AND end_date + interval '1 hour' DESC",
                ),
            meetings::start_date.desc(),
        ))
        .first(conn)
        .await
        .optional()
}

/// What a source knows of a recording file besides its name: S3 its size, type
/// and etag; Whereby's `recording.finished` its recording id. `None` fields are
/// left as they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileFacts<'a> {
    pub size_bytes: Option<i64>,
    pub content_type: Option<&'a str>,
    pub etag: Option<&'a str>,
    pub whereby_recording_id: Option<&'a str>,
}

/// Records a recording file, whichever source saw it (Whereby's
/// `recording.finished`, an S3 notification, the scan): its name parsed for the
/// room and the time, matched to the meeting that was running then, and merged into
/// its row (an odd name is kept `unmatched` with the reason). The one way a file
/// becomes a row.
pub async fn record_file(
    conn: &mut AsyncPgConnection,
    bucket: &str,
    key: &str,
    facts: &FileFacts<'_>,
) -> QueryResult<RecordingRow> {
    let parsed = parse_recording_key(key);
    let (name, problem) = match &parsed {
        Ok(name) => (Some(name), None),
        Err(p) => (None, Some(p.to_string())),
    };
    let meeting_id = match name {
        Some(n) => meeting_for_recording(conn, &n.room_name, n.recorded_at).await?,
        None => None,
    };
    upsert(
        conn,
        &Sighting {
            bucket,
            object_key: key,
            meeting_id,
            room_name: name.map(|n| n.room_name.as_str()),
            recorded_at: name.map(|n| n.recorded_at),
            format: name.map(|n| n.format.as_str()),
            size_bytes: facts.size_bytes,
            content_type: facts.content_type,
            etag: facts.etag,
            whereby_recording_id: facts.whereby_recording_id,
            unmatched_reason: problem.as_deref(),
        },
    )
    .await
}

/// A file's facts from one source. `None` fields are left as they are.
struct Sighting<'a> {
    pub bucket: &'a str,
    pub object_key: &'a str,
    pub meeting_id: Option<Uuid>,
    pub room_name: Option<&'a str>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub format: Option<&'a str>,
    pub size_bytes: Option<i64>,
    pub content_type: Option<&'a str>,
    pub etag: Option<&'a str>,
    pub whereby_recording_id: Option<&'a str>,
    /// Why no meeting matched (`None` when one did).
    pub unmatched_reason: Option<&'a str>,
}

/// Inserts the recording or merges this sighting into it; returns the row after.
/// A later sighting that finds the meeting turns `unmatched` into `uploaded`; the
/// status otherwise never goes back.
async fn upsert(conn: &mut AsyncPgConnection, s: &Sighting<'_>) -> QueryResult<RecordingRow> {
    let status = if s.meeting_id.is_some() {
        "uploaded"
    } else {
        "unmatched"
    };
    let reason = if s.meeting_id.is_some() {
        None
    } else {
        Some(
            s.unmatched_reason
                .unwrap_or("no meeting with this room name"),
        )
    };
    diesel::sql_query(
        "INSERT INTO recordings AS r (id, bucket, object_key, meeting_id, room_name, recorded_at, format, \
         size_bytes, content_type, etag, whereby_recording_id, status, unmatched_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (bucket, object_key) DO UPDATE SET \
           meeting_id = COALESCE(r.meeting_id, EXCLUDED.meeting_id), \
           room_name = COALESCE(r.room_name, EXCLUDED.room_name), \
           recorded_at = COALESCE(r.recorded_at, EXCLUDED.recorded_at), \
           format = COALESCE(r.format, EXCLUDED.format), \
           size_bytes = COALESCE(EXCLUDED.size_bytes, r.size_bytes), \
           content_type = COALESCE(EXCLUDED.content_type, r.content_type), \
           etag = COALESCE(EXCLUDED.etag, r.etag), \
           whereby_recording_id = COALESCE(r.whereby_recording_id, EXCLUDED.whereby_recording_id), \
           status = CASE WHEN r.status = 'unmatched' AND COALESCE(r.meeting_id, EXCLUDED.meeting_id) IS NOT NULL \
                         THEN 'uploaded' ELSE r.status END, \
           unmatched_reason = CASE WHEN COALESCE(r.meeting_id, EXCLUDED.meeting_id) IS NOT NULL THEN NULL \
                                   ELSE r.unmatched_reason END, \
           updated_at = now() \
         RETURNING r.*",
    )
    .bind::<SqlUuid, _>(Uuid::new_v4())
    .bind::<Text, _>(s.bucket)
    .bind::<Text, _>(s.object_key)
    .bind::<Nullable<SqlUuid>, _>(s.meeting_id)
    .bind::<Nullable<Text>, _>(s.room_name)
    .bind::<Nullable<Timestamptz>, _>(s.recorded_at)
    .bind::<Nullable<Text>, _>(s.format)
    .bind::<Nullable<BigInt>, _>(s.size_bytes)
    .bind::<Nullable<Text>, _>(s.content_type)
    .bind::<Nullable<Text>, _>(s.etag)
    .bind::<Nullable<Text>, _>(s.whereby_recording_id)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(reason)
    .get_result(conn)
    .await
}

/// `uploaded` → `queued` once the hand-off is confirmed. Returns whether it moved.
pub async fn mark_queued(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::update(
        recordings::table
            .find(id)
            .filter(recordings::status.eq("uploaded")),
    )
    .set((
        recordings::status.eq("queued"),
        recordings::queued_at.eq(Utc::now()),
        recordings::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<RecordingRow>> {
    recordings::table
        .find(id)
        .select(RecordingRow::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find_by_key(
    conn: &mut AsyncPgConnection,
    bucket: &str,
    key: &str,
) -> QueryResult<Option<RecordingRow>> {
    recordings::table
        .filter(recordings::bucket.eq(bucket))
        .filter(recordings::object_key.eq(key))
        .select(RecordingRow::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn for_meeting(
    conn: &mut AsyncPgConnection,
    meeting_id: Uuid,
) -> QueryResult<Vec<RecordingRow>> {
    recordings::table
        .filter(recordings::meeting_id.eq(meeting_id))
        .select(RecordingRow::as_select())
        .order(recordings::recorded_at.asc())
        .load(conn)
        .await
}

pub async fn with_status(
    conn: &mut AsyncPgConnection,
    status: RecordingStatus,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<RecordingRow>, i64)> {
    let total = recordings::table
        .filter(recordings::status.eq(status.as_str()))
        .count()
        .get_result(conn)
        .await?;
    let rows = recordings::table
        .filter(recordings::status.eq(status.as_str()))
        .select(RecordingRow::as_select())
        .order((recordings::updated_at.desc(), recordings::id.asc()))
        .limit(limit)
        .offset(offset)
        .load(conn)
        .await?;
    Ok((rows, total))
}

pub enum PipelineUpdate {
    NotFound,
    /// The move would go backwards (or from a status the pipeline does not own).
    Refused {
        current: String,
    },
    Updated(Box<RecordingRow>),
}

/// What the pipeline reports. Locks the row so concurrent reports apply one after
/// the other; call it inside a transaction.
pub async fn set_pipeline_status(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    to: RecordingStatus,
) -> QueryResult<PipelineUpdate> {
    let Some(row) = recordings::table
        .find(id)
        .select(RecordingRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(PipelineUpdate::NotFound);
    };
    let from = row.status().unwrap_or(RecordingStatus::Unmatched);
    if !from.pipeline_may_move_to(to) {
        return Ok(PipelineUpdate::Refused {
            current: row.status,
        });
    }
    let now = Utc::now();
    let done_at = if to == RecordingStatus::Done {
        row.done_at.or(Some(now))
    } else {
        row.done_at
    };
    diesel::update(recordings::table.find(id))
        .set((
            recordings::status.eq(to.as_str()),
            recordings::done_at.eq(done_at),
            recordings::updated_at.eq(now),
        ))
        .returning(RecordingRow::as_returning())
        .get_result(conn)
        .await
        .map(|row| PipelineUpdate::Updated(Box::new(row)))
}

/// Recordings the pipeline finished more than `older_than` ago: the only ones
/// retention may delete.
pub async fn expired(
    conn: &mut AsyncPgConnection,
    done_before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<RecordingRow>> {
    recordings::table
        .filter(recordings::status.eq("done"))
        .filter(recordings::done_at.lt(done_before))
        .select(RecordingRow::as_select())
        .order(recordings::done_at.asc())
        .limit(limit)
        .load(conn)
        .await
}

pub async fn mark_deleted(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::update(
        recordings::table
            .find(id)
            .filter(recordings::status.eq("done")),
    )
    .set((
        recordings::status.eq("deleted"),
        recordings::deleted_at.eq(Utc::now()),
        recordings::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// The context the hand-off message carries.
#[derive(Debug, Clone, Queryable)]
pub struct HandOffContext {
    pub whereby_meeting_id: String,
    pub room_id: Option<Uuid>,
    pub owner: String,
}

pub async fn hand_off_context(
    conn: &mut AsyncPgConnection,
    meeting_id: Uuid,
) -> QueryResult<Option<HandOffContext>> {
    meetings::table
        .find(meeting_id)
        .select((
            meetings::whereby_meeting_id,
            meetings::room_id,
            meetings::owner,
        ))
        .first(conn)
        .await
        .optional()
}
