//! Applying one webhook event to Postgres: the inbox row and the event's effects in
//! one transaction. A redelivered event hits the inbox's unique id and changes
//! nothing. This is the worker's unit of work; tests call it directly.

use chrono::Utc;
use db::{
    AsyncConnection, AsyncPgConnection, DbPool, QueryError,
    events::{self, ClientCount, InboxEntry, ParticipantEvent},
};
use domain::{
    recording::{RecordingLocation, parse_recording_key},
    webhook::{
        ClientEventData, EventHeader, EventKind, MeetingRef, RecordingFinishedData,
        SessionEventData, is_person, people_in_room,
    },
};
use messaging::{SCHEMA_VERSION, WebhookEnvelope};
use serde::Deserialize;

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
    /// A type we act on whose data did not parse: recorded with its payload and
    /// the reason, counted, and applied if it comes again after a parser fix.
    Unrecognised,
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
            Self::Unrecognised => "unrecognised",
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

/// `work` within `limit`, or `Unavailable`: a database that stopped answering
/// (a black-holed connection) is treated like one that is down. The abandoned
/// connection is dropped with the future: the pool checks it before any reuse.
pub async fn bounded<T>(
    limit: std::time::Duration,
    work: impl std::future::Future<Output = Result<T, ApplyError>>,
) -> Result<T, ApplyError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(ApplyError::Unavailable(format!(
            "the database did not answer within {limit:?}"
        )))
    })
}

/// What a readable delivery carries.
pub struct Event {
    pub envelope: WebhookEnvelope,
    pub header: EventHeader,
}

/// Parses a delivery's body; `Err` is a poison message.
pub fn parse(body: &[u8]) -> Result<Event, String> {
    let mut envelope: WebhookEnvelope =
        serde_json::from_slice(body).map_err(|e| format!("not a webhook envelope: {e}"))?;
    // Text Postgres cannot store is made storable once, at the door, so that every
    // field taken from the event below is storable too.
    db::make_storable(&mut envelope.event);
    if let Some(id) = &mut envelope.request_id {
        *id = db::storable_text(id).into_owned();
    }
    if envelope.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema version {}",
            envelope.schema_version
        ));
    }
    let header: EventHeader = serde::Deserialize::deserialize(&envelope.event)
        .ok()
        .filter(EventHeader::is_valid)
        .ok_or("the event lacks a valid id, type or createdAt")?;
    Ok(Event { envelope, header })
}

/// The typed effect of an event, decided before the transaction.
enum Effect {
    Client(ClientEventData, bool),
    Session(String, bool),
    /// `recording.finished`: the object key in our bucket and Whereby's id.
    Recording {
        key: String,
        bucket: String,
        whereby_recording_id: Option<String>,
    },
    /// The type is one we act on, but its data did not parse: why.
    Unrecognised(String),
    None,
}

impl Effect {
    fn needs_meeting(&self) -> bool {
        matches!(self, Self::Client(..) | Self::Session(..))
    }
}

fn effect_of(event: &Event, location: Option<&RecordingLocation>) -> Effect {
    let data = event
        .envelope
        .event
        .get("data")
        .cloned()
        .unwrap_or_default();
    let unrecognised = |why: String| {
        // Bounded: serde's messages can quote the offending value.
        Effect::Unrecognised(why.chars().take(300).collect())
    };
    match EventKind::of(&event.header.event_type) {
        EventKind::RecordingFinished => {
            match serde_json::from_value::<RecordingFinishedData>(data) {
                Ok(d) => match location {
                    Some(location) => Effect::Recording {
                        key: location.key_for(&d.filename),
                        bucket: location.bucket.clone(),
                        whereby_recording_id: d.recording_id,
                    },
                    // No bucket configured: nothing to record it against.
                    None => Effect::None,
                },
                Err(e) => unrecognised(format!("recording.finished data: {e}")),
            }
        }
        kind @ (EventKind::ClientJoined | EventKind::ClientLeft) => {
            match serde_json::from_value::<ClientEventData>(data) {
                Ok(d) => Effect::Client(d, kind == EventKind::ClientJoined),
                Err(e) => unrecognised(format!("client event data: {e}")),
            }
        }
        kind @ (EventKind::SessionStarted | EventKind::SessionEnded) => {
            match serde_json::from_value::<SessionEventData>(data) {
                Ok(SessionEventData {
                    room_session_id: Some(session),
                    ..
                }) => Effect::Session(session, kind == EventKind::SessionStarted),
                Ok(_) => unrecognised("session event without a roomSessionId".to_owned()),
                Err(e) => unrecognised(format!("session event data: {e}")),
            }
        }
        EventKind::Other => Effect::None,
    }
}

/// Handles one event. `retries_left` says whether an unknown meeting may still be
/// waited for (`RetryLater`) or is final (`Unmatched`); `location` is where
/// recordings land (for `recording.finished`).
pub async fn handle(
    pool: &DbPool,
    event: &Event,
    retries_left: bool,
    location: Option<&RecordingLocation>,
) -> Result<Outcome, ApplyError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ApplyError::Unavailable(e.to_string()))?;
    handle_on(&mut conn, event, retries_left, location).await
}

pub async fn handle_on(
    conn: &mut AsyncPgConnection,
    event: &Event,
    retries_left: bool,
    location: Option<&RecordingLocation>,
) -> Result<Outcome, ApplyError> {
    let mut scratch = Scratch::default();
    let prepared = prepare(conn, event, retries_left, location, &mut scratch).await?;
    if prepared.outcome == Outcome::RetryLater {
        return Ok(Outcome::RetryLater);
    }
    conn.transaction::<_, QueryError, _>(async |conn| {
        let outcome = write(conn, event, &prepared, &mut scratch).await?;
        scratch.flush(conn).await?;
        Ok(outcome)
    })
    .await
    .map_err(ApplyError::from)
}

/// Handles several events in ONE transaction with a handful of statements: the
/// inbox rows in one insert, the participants' and sessions' changes merged per row
/// and written in one upsert each, one client count per meeting. The worker's fast
/// path; the same rules as [`handle_on`] (the convergence test runs both). Outcomes
/// are in the events' order; events whose meeting is not known yet come back as
/// `RetryLater` and write nothing.
pub async fn handle_batch(
    pool: &DbPool,
    events: &[(&Event, bool)],
    location: Option<&RecordingLocation>,
) -> Result<Vec<Outcome>, ApplyError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ApplyError::Unavailable(e.to_string()))?;
    conn.transaction::<_, QueryError, _>(async |conn| {
        let mut scratch = Scratch::default();
        let mut prepared = Vec::with_capacity(events.len());
        for (event, retries_left) in events {
            prepared.push(prepare(conn, event, *retries_left, location, &mut scratch).await?);
        }
        let entries: Vec<InboxEntry<'_>> = events
            .iter()
            .zip(&prepared)
            .filter(|(_, p)| p.outcome != Outcome::RetryLater)
            .map(|((e, _), p)| inbox_entry(e, p))
            .collect();
        // Every write of a batch goes in key order (inbox by event id, then
        // participants, sessions and meetings by their keys), so two workers applying
        // overlapping batches take their row locks in the same order and cannot
        // deadlock.
        let mut entries = entries;
        entries.sort_unstable_by(|a, b| a.event_id.cmp(b.event_id));
        entries.dedup_by(|a, b| a.event_id == b.event_id);
        let new_ids = events::record_many(conn, &entries).await?;
        let mut seen = std::collections::HashSet::new();
        let mut participants: std::collections::HashMap<
            (uuid::Uuid, String),
            events::ParticipantMerge,
        > = std::collections::HashMap::new();
        type Bounds = (Option<chrono::DateTime<Utc>>, Option<chrono::DateTime<Utc>>);
        let mut sessions: std::collections::HashMap<(uuid::Uuid, String), Bounds> =
            std::collections::HashMap::new();
        let mut outcomes = Vec::with_capacity(events.len());
        for ((event, _), p) in events.iter().zip(&prepared) {
            if p.outcome == Outcome::RetryLater {
                outcomes.push(Outcome::RetryLater);
                continue;
            }
            let header = &event.header;
            if !new_ids.contains(&header.id) || !seen.insert(header.id.clone()) {
                outcomes.push(Outcome::Duplicate);
                continue;
            }
            match (&p.effect, p.meeting_id) {
                (
                    Effect::Recording {
                        key,
                        bucket,
                        whereby_recording_id,
                    },
                    _,
                ) => {
                    record_recording(conn, bucket, key, whereby_recording_id.as_deref()).await?;
                }
                (Effect::Client(d, joined), Some(meeting)) if p.outcome == Outcome::Applied => {
                    merge_participant(&mut participants, meeting, header, d, *joined);
                    if let Some(snapshot) = client_snapshot(d, header) {
                        scratch.count(meeting, snapshot);
                    }
                }
                (Effect::Session(session, started), Some(meeting))
                    if p.outcome == Outcome::Applied =>
                {
                    let at = Some(header.created_at);
                    let b = sessions
                        .entry((meeting, session.clone()))
                        .or_insert((None, None));
                    if *started {
                        b.0 = b.0.min(at).or(at);
                    } else {
                        b.1 = b.1.max(at);
                    }
                }
                _ => {}
            }
            outcomes.push(p.outcome.clone());
        }
        let mut participants: Vec<_> = participants.into_iter().collect();
        participants.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let rows: Vec<_> = participants.into_iter().map(|(_, row)| row).collect();
        events::apply_participants(conn, &rows).await?;
        let mut rows: Vec<_> = sessions
            .into_iter()
            .map(|((m, s), (a, b))| (m, s, a, b))
            .collect();
        rows.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        events::apply_sessions(conn, &rows).await?;
        scratch.flush(conn).await?;
        Ok(outcomes)
    })
    .await
    .map_err(ApplyError::from)
}

/// Folds one client event into the batch's row for its participant: the newest
/// event's state and attributes, the earliest join, the latest leave.
fn merge_participant(
    rows: &mut std::collections::HashMap<(uuid::Uuid, String), events::ParticipantMerge>,
    meeting: uuid::Uuid,
    header: &EventHeader,
    d: &ClientEventData,
    joined: bool,
) {
    let at = header.created_at;
    let incoming = events::ParticipantMerge {
        meeting_id: meeting,
        participant_id: d.participant_id.clone(),
        display_name: d.display_name.clone(),
        role_name: d.role_name.clone(),
        external_id: d.external_id.clone(),
        is_person: is_person(d.role_name.as_deref()),
        joined,
        state_as_of: at,
        state_event_id: header.id.clone(),
        room_session_id: d.room_session_id.clone(),
        first_joined_at: joined.then_some(at),
        last_left_at: (!joined).then_some(at),
    };
    match rows.entry((meeting, d.participant_id.clone())) {
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(incoming);
        }
        std::collections::hash_map::Entry::Occupied(mut o) => {
            let row = o.get_mut();
            let first = match (row.first_joined_at, incoming.first_joined_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let last = row.last_left_at.max(incoming.last_left_at);
            if (incoming.state_as_of, &incoming.state_event_id)
                > (row.state_as_of, &row.state_event_id)
            {
                *row = incoming;
            }
            row.first_joined_at = first;
            row.last_left_at = last;
        }
    }
}

fn client_snapshot(d: &ClientEventData, header: &EventHeader) -> Option<Snapshot> {
    let n = d.num_clients?;
    let by_role = serde_json::to_value(d.num_clients_by_role_name.clone().unwrap_or_default())
        .unwrap_or_default();
    Some(Snapshot {
        people: i32::try_from(people_in_room(n, d.num_clients_by_role_name.as_ref()))
            .unwrap_or(i32::MAX),
        by_role,
        as_of: header.created_at,
        event_id: header.id.clone(),
    })
}

fn inbox_entry<'a>(event: &'a Event, p: &'a Prepared) -> InboxEntry<'a> {
    let header = &event.header;
    InboxEntry {
        event_id: &header.id,
        event_type: &header.event_type,
        whereby_meeting_id: p.whereby_meeting_id.as_deref(),
        meeting_id: p.meeting_id,
        created_at: header.created_at,
        received_at: event.envelope.received_at,
        request_id: event.envelope.request_id.as_deref(),
        outcome: p.outcome.label(),
        payload: &event.envelope.event,
        reason: match &p.effect {
            Effect::Unrecognised(why) => Some(why),
            _ => None,
        },
    }
}

/// Per-transaction state: meetings already looked up, and the newest client-count
/// snapshot per meeting. Only the newest snapshot can win (the rule in
/// `events::set_client_count`), so writing it once per transaction instead of once
/// per event gives the same result and spares rewriting the same row many times.
#[derive(Default)]
struct Scratch {
    meetings: std::collections::HashMap<String, Option<uuid::Uuid>>,
    counts: std::collections::HashMap<uuid::Uuid, Snapshot>,
}

struct Snapshot {
    people: i32,
    by_role: serde_json::Value,
    as_of: chrono::DateTime<Utc>,
    event_id: String,
}

impl Scratch {
    fn count(&mut self, meeting: uuid::Uuid, snapshot: Snapshot) {
        let newer = self
            .counts
            .get(&meeting)
            .is_none_or(|old| (snapshot.as_of, &snapshot.event_id) > (old.as_of, &old.event_id));
        if newer {
            self.counts.insert(meeting, snapshot);
        }
    }

    async fn flush(&mut self, conn: &mut AsyncPgConnection) -> Result<(), QueryError> {
        // In meeting order, like every write of a batch (no deadlocks between
        // replicas).
        let mut counts: Vec<_> = self.counts.drain().collect();
        counts.sort_unstable_by_key(|(meeting, _)| *meeting);
        for (meeting, s) in counts {
            events::set_client_count(
                conn,
                meeting,
                &ClientCount {
                    people: s.people,
                    by_role: &s.by_role,
                    as_of: s.as_of,
                    event_id: &s.event_id,
                },
            )
            .await?;
        }
        Ok(())
    }
}

/// What an event will do, decided by reading only.
struct Prepared {
    effect: Effect,
    whereby_meeting_id: Option<String>,
    meeting_id: Option<uuid::Uuid>,
    outcome: Outcome,
}

async fn prepare(
    conn: &mut AsyncPgConnection,
    event: &Event,
    retries_left: bool,
    location: Option<&RecordingLocation>,
    scratch: &mut Scratch,
) -> Result<Prepared, QueryError> {
    let effect = effect_of(event, location);
    let whereby_meeting_id = event
        .envelope
        .event
        .get("data")
        .and_then(|d| MeetingRef::deserialize(d).ok())
        .and_then(|r| r.meeting_id);
    let meeting_id = match &whereby_meeting_id {
        Some(id) => match scratch.meetings.get(id) {
            Some(found) => *found,
            None => {
                let found = events::meeting_for(conn, id).await?;
                // Only known meetings are cached: one may appear between batches.
                if found.is_some() {
                    scratch.meetings.insert(id.clone(), found);
                }
                found
            }
        },
        None => None,
    };
    let outcome = if effect.needs_meeting() && meeting_id.is_none() && retries_left {
        Outcome::RetryLater
    } else {
        match (&effect, meeting_id) {
            (Effect::None, _) => Outcome::Stored,
            (Effect::Unrecognised(_), _) => Outcome::Unrecognised,
            (Effect::Recording { .. }, _) => Outcome::Applied,
            (_, Some(_)) => Outcome::Applied,
            (_, None) => Outcome::Unmatched,
        }
    };
    Ok(Prepared {
        effect,
        whereby_meeting_id,
        meeting_id,
        outcome,
    })
}

/// The inbox row and the effects; the caller owns the transaction.
async fn write(
    conn: &mut AsyncPgConnection,
    event: &Event,
    p: &Prepared,
    scratch: &mut Scratch,
) -> Result<Outcome, QueryError> {
    let header = &event.header;
    let entry = inbox_entry(event, p);
    if !events::record(conn, &entry).await? {
        return Ok(Outcome::Duplicate);
    }
    match (&p.effect, p.meeting_id) {
        (
            Effect::Recording {
                key,
                bucket,
                whereby_recording_id,
            },
            _,
        ) => {
            record_recording(conn, bucket, key, whereby_recording_id.as_deref()).await?;
        }
        (_, Some(meeting_id)) if p.outcome == Outcome::Applied => {
            apply_effect(conn, meeting_id, header, &p.effect, scratch).await?;
        }
        _ => {}
    }
    Ok(p.outcome.clone())
}

async fn apply_effect(
    conn: &mut AsyncPgConnection,
    meeting_id: uuid::Uuid,
    header: &EventHeader,
    effect: &Effect,
    scratch: &mut Scratch,
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
            if let Some(snapshot) = client_snapshot(d, header) {
                scratch.count(meeting_id, snapshot);
            }
        }
        Effect::Session(session, started) => {
            events::apply_session(conn, meeting_id, session, *started, header.created_at).await?;
        }
        Effect::Recording { .. } | Effect::Unrecognised(_) | Effect::None => {}
    }
    Ok(())
}

/// `recording.finished` names the file the S3 notification will (or did) announce:
/// both land on the same row. The hand-off waits for the S3 side, which knows the
/// object is there and how big it is.
async fn record_recording(
    conn: &mut AsyncPgConnection,
    bucket: &str,
    key: &str,
    whereby_recording_id: Option<&str>,
) -> Result<(), QueryError> {
    let parsed = parse_recording_key(key);
    let (name, problem) = match &parsed {
        Ok(n) => (Some(n), None),
        Err(p) => (None, Some(p.to_string())),
    };
    let meeting_id = match name {
        Some(n) => db::recordings::meeting_for_recording(conn, &n.room_name, n.recorded_at).await?,
        None => None,
    };
    db::recordings::upsert(
        conn,
        &db::recordings::Sighting {
            bucket,
            object_key: key,
            meeting_id,
            room_name: name.map(|n| n.room_name.as_str()),
            recorded_at: name.map(|n| n.recorded_at),
            format: name.map(|n| n.format.as_str()),
            size_bytes: None,
            content_type: None,
            etag: None,
            whereby_recording_id,
            unmatched_reason: problem.as_deref(),
        },
    )
    .await
    .map(drop)
}

/// Seconds from the event's creation to now, for the lag metric.
pub fn lag(event: &Event) -> std::time::Duration {
    (Utc::now() - event.header.created_at)
        .to_std()
        .unwrap_or_default()
}
