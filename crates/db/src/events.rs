//! The webhook inbox and the state webhooks maintain: participants, sessions and
//! the meeting's client count. Every write here converges whatever the order and
//! multiplicity of the events (the rules of `domain::convergence`).

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain::convergence::{ClientCount, ParticipantState, SessionBounds};
use uuid::Uuid;

use crate::schema::{meeting_participants, meeting_sessions, meetings, webhook_events};

#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_events)]
pub struct InboxEntry<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub whereby_meeting_id: Option<&'a str>,
    pub meeting_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub request_id: Option<&'a str>,
    pub outcome: &'a str,
    pub payload: &'a serde_json::Value,
    /// Why an `unrecognised` event could not be read.
    pub reason: Option<&'a str>,
}

/// Unrecognised events received since `since`, oldest first, at most `limit`:
/// `(event id, payload)`.
pub async fn unrecognised_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<(String, serde_json::Value)>> {
    webhook_events::table
        .filter(webhook_events::outcome.eq("unrecognised"))
        .filter(webhook_events::recorded_at.ge(since))
        .order(webhook_events::recorded_at.asc())
        .limit(limit)
        .select((webhook_events::event_id, webhook_events::payload))
        .load(conn)
        .await
}

/// Our meeting for a Whereby meeting id.
pub async fn meeting_for(
    conn: &mut AsyncPgConnection,
    whereby_meeting_id: &str,
) -> QueryResult<Option<Uuid>> {
    meetings::table
        .filter(meetings::whereby_meeting_id.eq(whereby_meeting_id))
        .select(meetings::id)
        .first(conn)
        .await
        .optional()
}

/// Stores the snapshot unless a newer one is there (the rule of
/// `domain::convergence::ClientCount::merge`, in SQL).
pub async fn set_client_count(
    conn: &mut AsyncPgConnection,
    meeting_id: Uuid,
    count: &ClientCount,
) -> QueryResult<usize> {
    let by_role = serde_json::to_value(&count.by_role).unwrap_or_default();
    diesel::sql_query(
        "UPDATE meetings SET num_clients = $2, num_clients_by_role = $3, num_clients_as_of = $4, \
         num_clients_event_id = $5, updated_at = now() \
         WHERE id = $1 AND (num_clients_as_of IS NULL \
            OR ($4, $5) > (num_clients_as_of, num_clients_event_id))",
    )
    .bind::<SqlUuid, _>(meeting_id)
    .bind::<diesel::sql_types::Integer, _>(count.people)
    .bind::<Jsonb, _>(by_role)
    .bind::<Timestamptz, _>(count.stamp.at)
    .bind::<Text, _>(&count.stamp.event_id)
    .execute(conn)
    .await
}

/// The merge of an incoming participant row into a stored one, in SQL: the rule of
/// `domain::convergence::ParticipantState::merge` (the newer stamp decides state and
/// attributes; first join and last leave are min and max).
fn participant_merge_assignments() -> String {
    const NEWER: &str =
        "(EXCLUDED.state_as_of, EXCLUDED.state_event_id) > (p.state_as_of, p.state_event_id)";
    let newer =
        |col: &str| format!("{col} = CASE WHEN {NEWER} THEN EXCLUDED.{col} ELSE p.{col} END");
    let mut parts = vec![
        "first_joined_at = LEAST(p.first_joined_at, EXCLUDED.first_joined_at)".to_owned(),
        "last_left_at = GREATEST(p.last_left_at, EXCLUDED.last_left_at)".to_owned(),
    ];
    parts.extend(
        [
            "display_name",
            "role_name",
            "external_id",
            "is_person",
            "state",
            "room_session_id",
            "state_event_id",
            "state_as_of",
        ]
        .map(newer),
    );
    parts.join(", ")
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = meeting_participants, check_for_backend(diesel::pg::Pg))]
pub struct ParticipantRow {
    pub participant_id: String,
    pub display_name: Option<String>,
    pub role_name: Option<String>,
    pub external_id: Option<String>,
    pub is_person: bool,
    pub state: String,
    pub room_session_id: Option<String>,
    pub first_joined_at: Option<DateTime<Utc>>,
    pub last_left_at: Option<DateTime<Utc>>,
}

pub async fn participants(
    conn: &mut AsyncPgConnection,
    meeting_id: Uuid,
) -> QueryResult<Vec<ParticipantRow>> {
    meeting_participants::table
        .filter(meeting_participants::meeting_id.eq(meeting_id))
        .select(ParticipantRow::as_select())
        .order((
            meeting_participants::first_joined_at.asc(),
            meeting_participants::participant_id.asc(),
        ))
        .load(conn)
        .await
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = meeting_sessions, check_for_backend(diesel::pg::Pg))]
pub struct SessionRow {
    pub room_session_id: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

pub async fn sessions(
    conn: &mut AsyncPgConnection,
    meeting_id: Uuid,
) -> QueryResult<Vec<SessionRow>> {
    meeting_sessions::table
        .filter(meeting_sessions::meeting_id.eq(meeting_id))
        .select(SessionRow::as_select())
        .order((
            meeting_sessions::started_at.asc(),
            meeting_sessions::room_session_id.asc(),
        ))
        .load(conn)
        .await
}

/// How many inbox rows have each outcome (tests and operators).
pub async fn outcome_counts(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, i64)>> {
    webhook_events::table
        .group_by(webhook_events::outcome)
        .select((webhook_events::outcome, diesel::dsl::count_star()))
        .load(conn)
        .await
}

/// Records many events in one statement; returns the ids that were new. Ids
/// repeated within `entries` are recorded once.
pub async fn record_many(
    conn: &mut AsyncPgConnection,
    entries: &[InboxEntry<'_>],
) -> QueryResult<std::collections::HashSet<String>> {
    use diesel::sql_types::Array;
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = Text)]
        event_id: String,
    }
    if entries.is_empty() {
        return Ok(Default::default());
    }
    let col = |f: fn(&InboxEntry<'_>) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
    let ids: Vec<String> = entries.iter().map(|e| e.event_id.to_owned()).collect();
    let types: Vec<String> = entries.iter().map(|e| e.event_type.to_owned()).collect();
    let created: Vec<DateTime<Utc>> = entries.iter().map(|e| e.created_at).collect();
    let received: Vec<DateTime<Utc>> = entries.iter().map(|e| e.received_at).collect();
    let outcomes: Vec<String> = entries.iter().map(|e| e.outcome.to_owned()).collect();
    let payloads: Vec<serde_json::Value> = entries.iter().map(|e| e.payload.clone()).collect();
    let meetings: Vec<Option<Uuid>> = entries.iter().map(|e| e.meeting_id).collect();
    // A repeat of an `unrecognised` event replaces its row (it is applied after a
    // parser fix, `events reapply`); any other repeat changes nothing. The caller passes each id once: an upsert may
    // not touch one row twice in a statement.
    let rows: Vec<Id> = diesel::sql_query(
        "INSERT INTO webhook_events AS e (event_id, event_type, whereby_meeting_id, meeting_id, created_at, \
         received_at, request_id, outcome, payload, reason) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::uuid[], $5::timestamptz[], \
         $6::timestamptz[], $7::text[], $8::text[], $9::jsonb[], $10::text[]) \
         ON CONFLICT (event_id) DO UPDATE SET whereby_meeting_id = EXCLUDED.whereby_meeting_id, \
         meeting_id = EXCLUDED.meeting_id, received_at = EXCLUDED.received_at, \
         request_id = EXCLUDED.request_id, outcome = EXCLUDED.outcome, payload = EXCLUDED.payload, \
         reason = EXCLUDED.reason, recorded_at = now() \
         WHERE e.outcome = 'unrecognised' RETURNING event_id",
    )
    .bind::<Array<Text>, _>(ids)
    .bind::<Array<Text>, _>(types)
    .bind::<Array<Nullable<Text>>, _>(col(|e| e.whereby_meeting_id.map(str::to_owned)))
    .bind::<Array<Nullable<SqlUuid>>, _>(meetings)
    .bind::<Array<Timestamptz>, _>(created)
    .bind::<Array<Timestamptz>, _>(received)
    .bind::<Array<Nullable<Text>>, _>(col(|e| e.request_id.map(str::to_owned)))
    .bind::<Array<Text>, _>(outcomes)
    .bind::<Array<Jsonb>, _>(payloads)
    .bind::<Array<Nullable<Text>>, _>(col(|e| e.reason.map(str::to_owned)))
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.event_id).collect())
}

/// Upserts participants in one statement, each merged with its stored row. Each
/// (meeting, participant) must appear once (merge the batch first).
pub async fn apply_participants(
    conn: &mut AsyncPgConnection,
    rows: &[(Uuid, ParticipantState)],
) -> QueryResult<usize> {
    use diesel::sql_types::{Array, Bool as SqlBool};
    if rows.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO meeting_participants AS p (meeting_id, participant_id, display_name, role_name, \
         external_id, is_person, state, state_as_of, state_event_id, room_session_id, first_joined_at, \
         last_left_at) SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::bool[], $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[], \
         $12::timestamptz[]) ON CONFLICT (meeting_id, participant_id) DO UPDATE SET {}",
        participant_merge_assignments()
    );
    let col = |f: fn(&ParticipantState) -> Option<String>| {
        rows.iter().map(|(_, r)| f(r)).collect::<Vec<_>>()
    };
    diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(rows.iter().map(|(m, _)| *m).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            rows.iter()
                .map(|(_, r)| r.participant_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.display_name.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.role_name.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.external_id.clone()))
        .bind::<Array<SqlBool>, _>(rows.iter().map(|(_, r)| r.is_person).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            rows.iter()
                .map(|(_, r)| if r.joined { "joined" } else { "left" }.to_owned())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamptz>, _>(rows.iter().map(|(_, r)| r.stamp.at).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            rows.iter()
                .map(|(_, r)| r.stamp.event_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.room_session_id.clone()))
        .bind::<Array<Nullable<Timestamptz>>, _>(
            rows.iter()
                .map(|(_, r)| r.first_joined_at)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Timestamptz>>, _>(
            rows.iter().map(|(_, r)| r.last_left_at).collect::<Vec<_>>(),
        )
        .execute(conn)
        .await
}

/// Upserts sessions in one statement, each merged with its stored row (the rule
/// of `domain::convergence::SessionBounds::merge`: earliest start, latest end).
/// Each (meeting, session) must appear once.
pub async fn apply_sessions(
    conn: &mut AsyncPgConnection,
    rows: &[(Uuid, String, SessionBounds)],
) -> QueryResult<usize> {
    use diesel::sql_types::Array;
    if rows.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "INSERT INTO meeting_sessions AS s (meeting_id, room_session_id, started_at, ended_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
         ON CONFLICT (meeting_id, room_session_id) DO UPDATE SET \
         started_at = LEAST(s.started_at, EXCLUDED.started_at), \
         ended_at = GREATEST(s.ended_at, EXCLUDED.ended_at)",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamptz>>, _>(
        rows.iter().map(|r| r.2.started_at).collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Timestamptz>>, _>(rows.iter().map(|r| r.2.ended_at).collect::<Vec<_>>())
    .execute(conn)
    .await
}
