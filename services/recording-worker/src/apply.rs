//! Applying webhook events to Postgres: a batch of them (a lone delivery is a batch
//! of one), the inbox rows and their effects in one transaction. The one path from
//! a parsed delivery to the rows.

use std::collections::{HashMap, HashSet, hash_map::Entry};

use chrono::Utc;
use db::{
    AsyncConnection, AsyncPgConnection, DbPool, QueryError,
    events::{self, InboxEntry},
};
use domain::{
    convergence::{ClientCount, ParticipantState, SessionBounds, Stamp},
    recording::RecordingLocation,
    webhook::{EventBody, EventHeader, MeetingRef},
};
use messaging::{SCHEMA_VERSION, WebhookEnvelope};
use serde::Deserialize;
use uuid::Uuid;

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

/// What a readable delivery carries, parsed once.
pub struct Event {
    pub envelope: WebhookEnvelope,
    pub header: EventHeader,
    /// The Whereby meeting it concerns (`data.meetingId`), when it names one.
    pub whereby_meeting_id: Option<String>,
    pub body: EventBody,
}

/// Why a delivery can never be applied: a poison message.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("not a webhook envelope: {0}")]
    NotAnEnvelope(#[from] serde_json::Error),
    #[error("unsupported schema version {0}")]
    SchemaVersion(u32),
    #[error("the event lacks a valid id, type or createdAt")]
    NoValidHeader,
}

/// Parses a delivery's body; `Err` is a poison message.
pub fn parse(body: &[u8]) -> Result<Event, Unreadable> {
    let mut envelope: WebhookEnvelope = serde_json::from_slice(body)?;
    // Text Postgres cannot store is made storable once, at the door, so that every
    // field taken from the event below is storable too.
    db::make_storable(&mut envelope.event);
    if let Some(id) = &mut envelope.request_id {
        *id = db::storable_text(id).into_owned();
    }
    if envelope.schema_version != SCHEMA_VERSION {
        return Err(Unreadable::SchemaVersion(envelope.schema_version));
    }
    let header = EventHeader::of_event(&envelope.event).ok_or(Unreadable::NoValidHeader)?;
    let data = envelope.event.get("data").cloned().unwrap_or_default();
    let whereby_meeting_id = MeetingRef::deserialize(&data)
        .ok()
        .and_then(|r| r.meeting_id);
    let body = EventBody::parse(&header.event_type, data);
    Ok(Event {
        envelope,
        header,
        whereby_meeting_id,
        body,
    })
}

/// Applies a batch of events (one or many) in ONE transaction with a handful of
/// statements: the inbox rows in one insert; each participant's and session's
/// events folded in memory by the rules of `domain::convergence` and written in one
/// upsert each (merged there with the stored rows by the same rules); the newest
/// client count per meeting. A redelivered event hits the inbox's unique id and
/// changes nothing. `retries_left` (per event) says whether an unknown meeting may
/// still be waited for (`RetryLater`, nothing written) or is final (`Unmatched`);
/// `location` is where recordings land (for `recording.finished`). Outcomes are in
/// the events' order. This is the worker's unit of work; tests call it directly.
pub async fn apply_batch(
    pool: &DbPool,
    events: &[(&Event, bool)],
    location: Option<&RecordingLocation>,
) -> Result<Vec<Outcome>, ApplyError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ApplyError::Unavailable(e.to_string()))?;
    conn.transaction::<_, QueryError, _>(async |conn| {
        let mut meetings = Meetings::default();
        let mut prepared = Vec::with_capacity(events.len());
        for (event, retries_left) in events {
            prepared.push(prepare(conn, event, *retries_left, location, &mut meetings).await?);
        }
        // Every write of a batch goes in key order (inbox by event id, then
        // recordings, participants, sessions and meetings by their keys), so two workers applying
        // overlapping batches take their row locks in the same order and cannot
        // deadlock.
        let mut entries: Vec<InboxEntry<'_>> = events
            .iter()
            .zip(&prepared)
            .filter(|(_, p)| p.outcome != Outcome::RetryLater)
            .map(|((e, _), p)| inbox_entry(e, p))
            .collect();
        entries.sort_unstable_by(|a, b| a.event_id.cmp(b.event_id));
        entries.dedup_by(|a, b| a.event_id == b.event_id);
        let new_ids = events::record_many(conn, &entries).await?;
        let mut seen = HashSet::new();
        let mut participants: HashMap<(Uuid, String), ParticipantState> = HashMap::new();
        let mut sessions: HashMap<(Uuid, String), SessionBounds> = HashMap::new();
        let mut counts: HashMap<Uuid, ClientCount> = HashMap::new();
        let mut recordings: Vec<(String, Option<&str>)> = Vec::new();
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
            let stamp = || Stamp {
                at: header.created_at,
                event_id: header.id.clone(),
            };
            let applied = p.outcome == Outcome::Applied;
            match (&event.body, p.meeting_id, location) {
                (EventBody::RecordingFinished(d), _, Some(location)) if applied => {
                    recordings.push((location.key_for(&d.filename), d.recording_id.as_deref()));
                }
                (EventBody::ClientJoined(d) | EventBody::ClientLeft(d), Some(meeting), _)
                    if applied =>
                {
                    let joined = matches!(event.body, EventBody::ClientJoined(_));
                    let state = ParticipantState::of_event(d, joined, stamp());
                    match participants.entry((meeting, d.participant_id.clone())) {
                        Entry::Vacant(v) => {
                            v.insert(state);
                        }
                        Entry::Occupied(mut o) => o.get_mut().merge(state),
                    }
                    if let Some(count) = ClientCount::of_event(d, stamp()) {
                        match counts.entry(meeting) {
                            Entry::Vacant(v) => {
                                v.insert(count);
                            }
                            Entry::Occupied(mut o) => o.get_mut().merge(count),
                        }
                    }
                }
                (
                    EventBody::SessionStarted { room_session_id }
                    | EventBody::SessionEnded { room_session_id },
                    Some(meeting),
                    _,
                ) if applied => {
                    let started = matches!(event.body, EventBody::SessionStarted { .. });
                    sessions
                        .entry((meeting, room_session_id.clone()))
                        .or_default()
                        .merge(SessionBounds::of_event(started, header.created_at));
                }
                _ => {}
            }
            outcomes.push(p.outcome.clone());
        }
        // Recordings by object key (the intake upserts the same rows, one at a time).
        recordings.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(location) = location {
            for (key, whereby_recording_id) in &recordings {
                record_recording(conn, &location.bucket, key, *whereby_recording_id).await?;
            }
        }
        let mut participants: Vec<_> = participants.into_iter().collect();
        participants.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let rows: Vec<_> = participants
            .into_iter()
            .map(|((meeting, _), state)| (meeting, state))
            .collect();
        events::apply_participants(conn, &rows).await?;
        let mut rows: Vec<_> = sessions
            .into_iter()
            .map(|((meeting, session), bounds)| (meeting, session, bounds))
            .collect();
        rows.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        events::apply_sessions(conn, &rows).await?;
        // Only the newest snapshot can win (the rule in `events::set_client_count`),
        // so one write per meeting gives the same result as one per event.
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_unstable_by_key(|(meeting, _)| *meeting);
        for (meeting, count) in counts {
            events::set_client_count(conn, meeting, &count).await?;
        }
        Ok(outcomes)
    })
    .await
    .map_err(ApplyError::from)
}

fn inbox_entry<'a>(event: &'a Event, p: &'a Prepared) -> InboxEntry<'a> {
    let header = &event.header;
    InboxEntry {
        event_id: &header.id,
        event_type: &header.event_type,
        whereby_meeting_id: event.whereby_meeting_id.as_deref(),
        meeting_id: p.meeting_id,
        created_at: header.created_at,
        received_at: event.envelope.received_at,
        request_id: event.envelope.request_id.as_deref(),
        outcome: p.outcome.label(),
        payload: &event.envelope.event,
        reason: match &event.body {
            EventBody::Unrecognised(why) => Some(why),
            _ => None,
        },
    }
}

/// Meetings already looked up in this transaction. Only known meetings are kept:
/// one may appear between batches.
#[derive(Default)]
struct Meetings(HashMap<String, Uuid>);

impl Meetings {
    async fn get(
        &mut self,
        conn: &mut AsyncPgConnection,
        whereby_meeting_id: &str,
    ) -> Result<Option<Uuid>, QueryError> {
        if let Some(found) = self.0.get(whereby_meeting_id) {
            return Ok(Some(*found));
        }
        let found = events::meeting_for(conn, whereby_meeting_id).await?;
        if let Some(id) = found {
            self.0.insert(whereby_meeting_id.to_owned(), id);
        }
        Ok(found)
    }
}

/// What an event will do, decided by reading only.
struct Prepared {
    meeting_id: Option<Uuid>,
    outcome: Outcome,
}

async fn prepare(
    conn: &mut AsyncPgConnection,
    event: &Event,
    retries_left: bool,
    location: Option<&RecordingLocation>,
    meetings: &mut Meetings,
) -> Result<Prepared, QueryError> {
    let meeting_id = match &event.whereby_meeting_id {
        Some(id) => meetings.get(conn, id).await?,
        None => None,
    };
    let outcome = if event.body.needs_meeting() && meeting_id.is_none() && retries_left {
        Outcome::RetryLater
    } else {
        match (&event.body, meeting_id) {
            (EventBody::Other, _) => Outcome::Stored,
            (EventBody::Unrecognised(_), _) => Outcome::Unrecognised,
            // No bucket configured: nothing to record it against.
            (EventBody::RecordingFinished(_), _) if location.is_none() => Outcome::Stored,
            (EventBody::RecordingFinished(_), _) => Outcome::Applied,
            (_, Some(_)) => Outcome::Applied,
            (_, None) => Outcome::Unmatched,
        }
    };
    Ok(Prepared {
        meeting_id,
        outcome,
    })
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
    let facts = db::recordings::FileFacts {
        whereby_recording_id,
        ..Default::default()
    };
    db::recordings::record_file(conn, bucket, key, &facts)
        .await
        .map(drop)
}

/// Seconds from the event's creation to now, for the lag metric.
pub fn lag(event: &Event) -> std::time::Duration {
    (Utc::now() - event.header.created_at)
        .to_std()
        .unwrap_or_default()
}
