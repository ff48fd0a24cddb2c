//! The webhook inbox and the state webhooks maintain: participants, sessions and
//! the meeting's client count. Every write here converges whatever the order and
//! multiplicity of the events (see `domain::webhook`).

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Bool, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
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
}

/// Records an event in the inbox. `false` means it was already there: a duplicate
/// whose effects must not be applied again.
pub async fn record(conn: &mut AsyncPgConnection, entry: &InboxEntry<'_>) -> QueryResult<bool> {
    diesel::insert_into(webhook_events::table)
        .values(entry)
        .on_conflict(webhook_events::event_id)
        .do_nothing()
        .execute(conn)
        .await
        .map(|n| n == 1)
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

/// The client-count snapshot of a joined/left event.
pub struct ClientCount<'a> {
    pub people: i32,
    pub by_role: &'a serde_json::Value,
    pub as_of: DateTime<Utc>,
    pub event_id: &'a str,
}

/// Stores the snapshot unless a newer one (by `(createdAt, event id)`) is there.
pub async fn set_client_count(
    conn: &mut AsyncPgConnection,
    meeting_id: Uuid,
    count: &ClientCount<'_>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE meetings SET num_clients = $2, num_clients_by_role = $3, num_clients_as_of = $4, \
         num_clients_event_id = $5, updated_at = now() \
         WHERE id = $1 AND (num_clients_as_of IS NULL \
            OR ($4, $5) > (num_clients_as_of, num_clients_event_id))",
    )
    .bind::<SqlUuid, _>(meeting_id)
    .bind::<diesel::sql_types::Integer, _>(count.people)
    .bind::<Jsonb, _>(count.by_role)
    .bind::<Timestamptz, _>(count.as_of)
    .bind::<Text, _>(count.event_id)
    .execute(conn)
    .await
}

/// A participant's state as one joined/left event reports it.
pub struct ParticipantEvent<'a> {
    pub meeting_id: Uuid,
    pub participant_id: &'a str,
    pub display_name: Option<&'a str>,
    pub role_name: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub is_person: bool,
    pub joined: bool,
    pub at: DateTime<Utc>,
    pub event_id: &'a str,
    pub room_session_id: Option<&'a str>,
}

/// Upserts the participant. The latest event (by `(createdAt, event id)`) decides
/// the state and attributes, so a late `joined` older than a stored `left` changes
/// nothing; first join and last leave are the min and max over all events.
pub async fn apply_participant(
    conn: &mut AsyncPgConnection,
    e: &ParticipantEvent<'_>,
) -> QueryResult<usize> {
    const NEWER: &str =
        "(EXCLUDED.state_as_of, EXCLUDED.state_event_id) > (p.state_as_of, p.state_event_id)";
    let newer =
        |col: &str| format!("{col} = CASE WHEN {NEWER} THEN EXCLUDED.{col} ELSE p.{col} END");
    let assignments = [
        "display_name",
        "role_name",
        "external_id",
        "is_person",
        "state",
        "room_session_id",
        "state_event_id",
        "state_as_of",
    ]
    .map(newer)
    .join(", ");
    let sql = format!(
        "INSERT INTO meeting_participants AS p (meeting_id, participant_id, display_name, role_name, \
         external_id, is_person, state, state_as_of, state_event_id, room_session_id, first_joined_at, \
         last_left_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (meeting_id, participant_id) DO UPDATE SET \
         first_joined_at = LEAST(p.first_joined_at, EXCLUDED.first_joined_at), \
         last_left_at = GREATEST(p.last_left_at, EXCLUDED.last_left_at), {assignments}"
    );
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(e.meeting_id)
        .bind::<Text, _>(e.participant_id)
        .bind::<Nullable<Text>, _>(e.display_name)
        .bind::<Nullable<Text>, _>(e.role_name)
        .bind::<Nullable<Text>, _>(e.external_id)
        .bind::<Bool, _>(e.is_person)
        .bind::<Text, _>(if e.joined { "joined" } else { "left" })
        .bind::<Timestamptz, _>(e.at)
        .bind::<Text, _>(e.event_id)
        .bind::<Nullable<Text>, _>(e.room_session_id)
        .bind::<Nullable<Timestamptz>, _>(e.joined.then_some(e.at))
        .bind::<Nullable<Timestamptz>, _>((!e.joined).then_some(e.at))
        .execute(conn)
        .await
}

/// Records a session start or end; the earliest start and latest end win.
pub async fn apply_session(
    conn: &mut AsyncPgConnection,
    meeting_id: Uuid,
    room_session_id: &str,
    started: bool,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO meeting_sessions AS s (meeting_id, room_session_id, started_at, ended_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (meeting_id, room_session_id) DO UPDATE SET \
         started_at = LEAST(s.started_at, EXCLUDED.started_at), \
         ended_at = GREATEST(s.ended_at, EXCLUDED.ended_at)",
    )
    .bind::<SqlUuid, _>(meeting_id)
    .bind::<Text, _>(room_session_id)
    .bind::<Nullable<Timestamptz>, _>(started.then_some(at))
    .bind::<Nullable<Timestamptz>, _>((!started).then_some(at))
    .execute(conn)
    .await
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
