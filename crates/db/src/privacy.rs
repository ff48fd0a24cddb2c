//! Personal data kept only as long as it should be: retention (names and external
//! ids of participants, raw webhook payloads) and erasure (one person, one
//! meeting), with an audit row that never holds the erased data.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::QueryError;

/// Whose personal data to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A person by Whereby's `externalId` (what our product sets for its users).
    ExternalId(String),
    /// A person by Whereby's `participantId`, in any meeting.
    ParticipantId(String),
    /// Everyone in one meeting, and its recordings.
    Meeting(Uuid),
}

impl Subject {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ExternalId(_) => "external_id",
            Self::ParticipantId(_) => "participant_id",
            Self::Meeting(_) => "meeting",
        }
    }
}

/// The payload an inbox row keeps once reduced: what deduplication needs.
const REDUCED_PAYLOAD: &str =
    "jsonb_build_object('id', event_id, 'type', event_type, 'createdAt', created_at)";

/// Erases the subject's personal data from participants and the inbox, in the
/// caller's transaction; returns (participants erased, inbox rows reduced).
/// Idempotent: a second call finds nothing left to erase.
pub async fn erase_rows(
    conn: &mut AsyncPgConnection,
    subject: &Subject,
) -> Result<(i64, i64), QueryError> {
    // The participants concerned, by (meeting, participant id).
    #[derive(diesel::QueryableByName)]
    struct Who {
        #[diesel(sql_type = SqlUuid)]
        meeting_id: Uuid,
        #[diesel(sql_type = Text)]
        participant_id: String,
    }
    let who: Vec<Who> = match subject {
        Subject::ExternalId(x) => diesel::sql_query(
            "SELECT meeting_id, participant_id FROM meeting_participants WHERE external_id = $1",
        )
        .bind::<Text, _>(x)
        .load(conn)
        .await?,
        Subject::ParticipantId(p) => diesel::sql_query(
            "SELECT meeting_id, participant_id FROM meeting_participants WHERE participant_id = $1",
        )
        .bind::<Text, _>(p)
        .load(conn)
        .await?,
        Subject::Meeting(m) => {
            diesel::sql_query(
                "SELECT meeting_id, participant_id FROM meeting_participants WHERE meeting_id = $1",
            )
            .bind::<SqlUuid, _>(m)
            .load(conn)
            .await?
        }
    };
    let meetings: Vec<Uuid> = who.iter().map(|w| w.meeting_id).collect();
    let participants: Vec<String> = who.iter().map(|w| w.participant_id.clone()).collect();
    let erased = diesel::sql_query(
        "UPDATE meeting_participants SET display_name = NULL, external_id = NULL \
         FROM UNNEST($1::uuid[], $2::text[]) AS w(meeting_id, participant_id) \
         WHERE meeting_participants.meeting_id = w.meeting_id \
           AND meeting_participants.participant_id = w.participant_id \
           AND (display_name IS NOT NULL OR external_id IS NOT NULL)",
    )
    .bind::<Array<SqlUuid>, _>(&meetings)
    .bind::<Array<Text>, _>(&participants)
    .execute(conn)
    .await?;
    // The inbox: the events that carry the subject (for a person, those of the
    // participant ids found or with the external id; for a meeting, all of its).
    let reduce = format!(
        "UPDATE webhook_events SET payload = {REDUCED_PAYLOAD}, reason = NULL, reduced_at = now() \
         WHERE reduced_at IS NULL AND "
    );
    let reduced = match subject {
        Subject::Meeting(m) => {
            diesel::sql_query(format!("{reduce} meeting_id = $1"))
                .bind::<SqlUuid, _>(m)
                .execute(conn)
                .await?
        }
        Subject::ExternalId(x) => {
            diesel::sql_query(format!(
                "{reduce} (payload->'data'->>'externalId' = $1 \
                 OR payload->'data'->>'participantId' = ANY($2))"
            ))
            .bind::<Text, _>(x)
            .bind::<Array<Text>, _>(&participants)
            .execute(conn)
            .await?
        }
        Subject::ParticipantId(p) => {
            diesel::sql_query(format!("{reduce} payload->'data'->>'participantId' = $1"))
                .bind::<Text, _>(p)
                .execute(conn)
                .await?
        }
    };
    Ok((erased as i64, reduced as i64))
}

/// Records an erasure (who asked, when, what kind, how much; never the data).
pub async fn audit(
    conn: &mut AsyncPgConnection,
    requested_by: &str,
    subject: &Subject,
    counts: (i64, i64, i64),
) -> Result<Uuid, QueryError> {
    let id = Uuid::new_v4();
    let meeting = match subject {
        Subject::Meeting(m) => Some(*m),
        _ => None,
    };
    let clamp = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    diesel::sql_query(
        "INSERT INTO erasures (id, requested_by, subject_kind, meeting_id, participants_erased, \
         events_reduced, recordings_erased) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(requested_by)
    .bind::<Text, _>(subject.kind())
    .bind::<Nullable<SqlUuid>, _>(meeting)
    .bind::<Integer, _>(clamp(counts.0))
    .bind::<Integer, _>(clamp(counts.1))
    .bind::<Integer, _>(clamp(counts.2))
    .execute(conn)
    .await?;
    Ok(id)
}

/// A meeting's recordings still in the bucket: `(id, bucket, key)`.
pub async fn recordings_to_erase(
    conn: &mut AsyncPgConnection,
    meeting: Uuid,
) -> Result<Vec<(Uuid, String, String)>, QueryError> {
    #[derive(diesel::QueryableByName)]
    struct R {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = Text)]
        bucket: String,
        #[diesel(sql_type = Text)]
        object_key: String,
    }
    let rows: Vec<R> = diesel::sql_query(
        "SELECT id, bucket, object_key FROM recordings \
         WHERE meeting_id = $1 AND status NOT IN ('erased', 'deleted') ORDER BY id",
    )
    .bind::<SqlUuid, _>(meeting)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.bucket, r.object_key))
        .collect())
}

/// Marks a recording erased once its object is gone from the bucket.
pub async fn mark_recording_erased(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<(), QueryError> {
    diesel::sql_query(
        "UPDATE recordings SET status = 'erased', erased_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .execute(conn)
    .await
    .map(drop)
}

/// What one retention run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub participants_erased: i64,
    pub events_reduced: i64,
    pub events_deleted: i64,
}

/// Rows touched per statement at most: a run of the job does its work in bounded
/// steps, never one statement over a whole table.
const RETENTION_STEP: i64 = 5_000;

/// Participants whose state is older than `personal_before` lose their name and
/// external id; inbox payloads received before it are reduced; inbox rows received
/// before `inbox_before` are deleted (long past any redelivery).
pub async fn apply_retention(
    conn: &mut AsyncPgConnection,
    personal_before: DateTime<Utc>,
    inbox_before: DateTime<Utc>,
) -> Result<Retention, QueryError> {
    let mut r = Retention::default();
    loop {
        let n = diesel::sql_query(
            "UPDATE meeting_participants SET display_name = NULL, external_id = NULL \
             WHERE (meeting_id, participant_id) IN (SELECT meeting_id, participant_id \
               FROM meeting_participants WHERE state_as_of < $1 \
               AND (display_name IS NOT NULL OR external_id IS NOT NULL) LIMIT $2)",
        )
        .bind::<Timestamptz, _>(personal_before)
        .bind::<BigInt, _>(RETENTION_STEP)
        .execute(conn)
        .await? as i64;
        r.participants_erased += n;
        if n < RETENTION_STEP {
            break;
        }
    }
    loop {
        let n = diesel::sql_query(format!(
            "UPDATE webhook_events SET payload = {REDUCED_PAYLOAD}, reason = NULL, reduced_at = now() \
             WHERE event_id IN (SELECT event_id FROM webhook_events \
               WHERE reduced_at IS NULL AND received_at < $1 LIMIT $2)"
        ))
        .bind::<Timestamptz, _>(personal_before)
        .bind::<BigInt, _>(RETENTION_STEP)
        .execute(conn)
        .await? as i64;
        r.events_reduced += n;
        if n < RETENTION_STEP {
            break;
        }
    }
    loop {
        let n = diesel::sql_query(
            "DELETE FROM webhook_events WHERE event_id IN (SELECT event_id FROM webhook_events \
             WHERE received_at < $1 LIMIT $2)",
        )
        .bind::<Timestamptz, _>(inbox_before)
        .bind::<BigInt, _>(RETENTION_STEP)
        .execute(conn)
        .await? as i64;
        r.events_deleted += n;
        if n < RETENTION_STEP {
            break;
        }
    }
    Ok(r)
}

/// Recordings and their bytes by status, from our own table (storage gauges).
pub async fn recordings_by_status(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<(String, i64, i64)>, QueryError> {
    #[derive(diesel::QueryableByName)]
    struct S {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = BigInt)]
        bytes: i64,
    }
    let rows: Vec<S> = diesel::sql_query(
        "SELECT status, count(*) AS n, coalesce(sum(size_bytes), 0)::bigint AS bytes \
         FROM recordings GROUP BY status",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|s| (s.status, s.n, s.bytes)).collect())
}
