//! Applying one webhook event to Postgres: the inbox row and the event's effects in
//! one transaction. A redelivered event hits the inbox's unique id and changes
//! nothing. This is the worker's unit of work; tests call it directly.

use chrono::Utc;
use db::{
    AsyncConnection, AsyncPgConnection, DbPool, QueryError,
    events::{self, ClientCount, InboxEntry, ParticipantEvent},
};
use domain::webhook::{
    ClientEventData, EventHeader, EventKind, MeetingRef, SessionEventData, is_person,
    people_in_room,
};
use messaging::{SCHEMA_VERSION, WebhookEnvelope};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded and its effects applied.
    Applied,
    /// Seen before: nothing changed.
    Duplicate,
    /// Recorded; the type has no effects (yet), or its data lacks what they need.
    Stored,
    /// Its meeting is still unknown after every retry: recorded as unmatched.
    Unmatched,
    /// Its meeting is not known yet (the webhook can beat room-api's commit):
    /// retry after a delay.
    RetryLater,
    /// Not an envelope we can read: dead-letter it.
    Poison(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Stored => "stored",
            Self::Unmatched => "unmatched",
            Self::RetryLater => "retry",
            Self::Poison(_) => "poison",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Postgres is down or unreachable: wait and try the same delivery again.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error; permanent for this event.
    #[error("database error: {0}")]
    Query(QueryError),
}

impl From<QueryError> for ApplyError {
    fn from(e: QueryError) -> Self {
        if db::is_unavailable(&e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::Query(e)
        }
    }
}

/// What a readable delivery carries.
pub struct Event {
    pub envelope: WebhookEnvelope,
    pub header: EventHeader,
}

/// Parses a delivery's body; `Err` is a poison message.
pub fn parse(body: &[u8]) -> Result<Event, String> {
    let envelope: WebhookEnvelope =
        serde_json::from_slice(body).map_err(|e| format!("not a webhook envelope: {e}"))?;
    if envelope.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema version {}",
            envelope.schema_version
        ));
    }
    let header: EventHeader = serde_json::from_value(envelope.event.clone())
        .ok()
        .filter(EventHeader::is_valid)
        .ok_or("the event lacks a valid id, type or createdAt")?;
    Ok(Event { envelope, header })
}

/// The typed effect of an event, decided before the transaction.
enum Effect {
    Client(ClientEventData, bool),
    Session(String, bool),
    None,
}

fn effect_of(event: &Event) -> Effect {
    let data = event
        .envelope
        .event
        .get("data")
        .cloned()
        .unwrap_or_default();
    match EventKind::of(&event.header.event_type) {
        kind @ (EventKind::ClientJoined | EventKind::ClientLeft) => serde_json::from_value(data)
            .map(|d| Effect::Client(d, kind == EventKind::ClientJoined))
            .unwrap_or(Effect::None),
        kind @ (EventKind::SessionStarted | EventKind::SessionEnded) => {
            match serde_json::from_value::<SessionEventData>(data) {
                Ok(SessionEventData {
                    room_session_id: Some(session),
                    ..
                }) => Effect::Session(session, kind == EventKind::SessionStarted),
                Ok(_) => Effect::None,
                Err(_) => Effect::None,
            }
        }
        EventKind::Other => Effect::None,
    }
}

/// Handles one event. `retries_left` says whether an unknown meeting may still be
/// waited for (`RetryLater`) or is final (`Unmatched`).
pub async fn handle(
    pool: &DbPool,
    event: &Event,
    retries_left: bool,
) -> Result<Outcome, ApplyError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ApplyError::Unavailable(e.to_string()))?;
    handle_on(&mut conn, event, retries_left).await
}

pub async fn handle_on(
    conn: &mut AsyncPgConnection,
    event: &Event,
    retries_left: bool,
) -> Result<Outcome, ApplyError> {
    let effect = effect_of(event);
    let whereby_meeting_id = serde_json::from_value::<MeetingRef>(
        event
            .envelope
            .event
            .get("data")
            .cloned()
            .unwrap_or_default(),
    )
    .ok()
    .and_then(|r| r.meeting_id);
    let meeting_id = match &whereby_meeting_id {
        Some(id) => events::meeting_for(conn, id).await?,
        None => None,
    };
    let has_effect = !matches!(effect, Effect::None);
    if has_effect && meeting_id.is_none() && retries_left {
        return Ok(Outcome::RetryLater);
    }
    let outcome = match (has_effect, meeting_id) {
        (true, Some(_)) => Outcome::Applied,
        (true, None) => Outcome::Unmatched,
        (false, _) => Outcome::Stored,
    };
    let header = &event.header;
    let entry = InboxEntry {
        event_id: &header.id,
        event_type: &header.event_type,
        whereby_meeting_id: whereby_meeting_id.as_deref(),
        meeting_id,
        created_at: header.created_at,
        received_at: event.envelope.received_at,
        request_id: event.envelope.request_id.as_deref(),
        outcome: outcome.label(),
        payload: &event.envelope.event,
    };
    conn.transaction::<_, QueryError, _>(async |conn| {
        if !events::record(conn, &entry).await? {
            return Ok(Outcome::Duplicate);
        }
        if let (Outcome::Applied, Some(meeting_id)) = (&outcome, meeting_id) {
            apply_effect(conn, meeting_id, header, &effect).await?;
        }
        Ok(outcome.clone())
    })
    .await
    .map_err(ApplyError::from)
}

async fn apply_effect(
    conn: &mut AsyncPgConnection,
    meeting_id: uuid::Uuid,
    header: &EventHeader,
    effect: &Effect,
) -> Result<(), QueryError> {
    match effect {
        Effect::Client(d, joined) => {
            events::apply_participant(
                conn,
                &ParticipantEvent {
                    meeting_id,
                    participant_id: &d.participant_id,
                    display_name: d.display_name.as_deref(),
                    role_name: d.role_name.as_deref(),
                    external_id: d.external_id.as_deref(),
                    is_person: is_person(d.role_name.as_deref()),
                    joined: *joined,
                    at: header.created_at,
                    event_id: &header.id,
                    room_session_id: d.room_session_id.as_deref(),
                },
            )
            .await?;
            if let Some(n) = d.num_clients {
                let by_role =
                    serde_json::to_value(d.num_clients_by_role_name.clone().unwrap_or_default())
                        .unwrap_or_default();
                let people = people_in_room(n, d.num_clients_by_role_name.as_ref());
                events::set_client_count(
                    conn,
                    meeting_id,
                    &ClientCount {
                        people: i32::try_from(people).unwrap_or(i32::MAX),
                        by_role: &by_role,
                        as_of: header.created_at,
                        event_id: &header.id,
                    },
                )
                .await?;
            }
        }
        Effect::Session(session, started) => {
            events::apply_session(conn, meeting_id, session, *started, header.created_at).await?;
        }
        Effect::None => {}
    }
    Ok(())
}

/// Seconds from the event's creation to now, for the lag metric.
pub fn lag(event: &Event) -> std::time::Duration {
    (Utc::now() - event.header.created_at)
        .to_std()
        .unwrap_or_default()
}
