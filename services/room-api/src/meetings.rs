//! Getting a room's meeting: reuse the active one while it still fits the room,
//! otherwise create one at Whereby. Creation is claimed per room in Postgres (a
//! token and a deadline on the room's row, committed at once), so concurrent
//! requests on any number of replicas produce one Whereby meeting, while the
//! Whereby call itself holds no pooled connection, no row lock and no open
//! transaction: a slow Whereby cannot exhaust the pool or outlast the session
//! limits. Creation runs in a task of its own, so a client that disconnects midway
//! cannot orphan the Whereby meeting: it is stored (and reused by the next request)
//! or deleted again.

use std::time::{Duration, Instant};

use actix_web::web;
use chrono::Utc;
use db::{
    AsyncConnection, AsyncPgConnection, QueryError,
    meetings::{self, MeetingRow, NewMeeting},
    rooms::{self, CreationClaim, RoomRow},
};
use domain::{MeetingReuse, reuse_decision};
use web_common::ApiError;
use whereby::{CreateMeeting, WherebyError};

use crate::{
    access::{self, RoomKey},
    auth::Caller,
    errors::{self, ErrorCode},
    state::AppState,
};

/// Polling interval while another request holds the room's creation claim.
const CLAIM_POLL: Duration = Duration::from_millis(100);
/// Slack on top of Whereby's longest call before a claim lapses.
const CLAIM_SLACK: Duration = Duration::from_secs(5);

/// Either a database failure (mapped at the end) or a finished HTTP error.
enum Failure {
    Db(QueryError),
    Api(ApiError),
}

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Self {
        Self::Db(e)
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Db(e) => errors::query(e),
            Failure::Api(e) => e,
        }
    }
}

pub struct MeetingForRoom {
    pub room: RoomRow,
    pub meeting: MeetingRow,
    pub created: bool,
}

pub async fn get_or_create(
    state: web::Data<AppState>,
    room: &RoomKey,
    caller: &Caller,
) -> Result<MeetingForRoom, ApiError> {
    if let RoomKey::Neither(_) = room {
        return Err(room.not_found());
    }
    // The common case first, without a lock: the room already has a meeting that
    // fits.
    {
        let mut conn = state.pool.get().await.map_err(errors::pool)?;
        if let Some(found) = reusable(&mut conn, room, caller).await? {
            return Ok(found);
        }
    }
    let (room, caller) = (room.clone(), caller.clone());
    tokio::spawn(async move { claim_and_create(&state, &room, &caller).await })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "meeting creation task failed");
            ApiError::internal()
        })?
}

/// What deciding under the room's lock came to.
enum Decision {
    Found(Box<MeetingForRoom>),
    /// Another request is creating the meeting until then.
    Wait(chrono::DateTime<Utc>),
    Claimed {
        room: Box<RoomRow>,
        settings: domain::RoomSettings,
        replaced: Vec<uuid::Uuid>,
        claim: CreationClaim,
    },
}

async fn claim_and_create(
    state: &AppState,
    room_key: &RoomKey,
    caller: &Caller,
) -> Result<MeetingForRoom, ApiError> {
    let claim_for = state.whereby.longest_call() + CLAIM_SLACK;
    let give_up = Instant::now() + claim_for + claim_for;
    let (room, settings, replaced, claim) = loop {
        let mut conn = state.pool.get().await.map_err(errors::pool)?;
        let decision = conn
            .transaction::<_, Failure, _>(async |conn| {
                decide(conn, room_key, caller, claim_for).await
            })
            .await?;
        drop(conn);
        match decision {
            Decision::Found(found) => return Ok(*found),
            Decision::Claimed {
                room,
                settings,
                replaced,
                claim,
            } => break (*room, settings, replaced, claim),
            Decision::Wait(until) => {
                if Instant::now() >= give_up {
                    return Err(ApiError::unavailable(
                        ErrorCode::Busy.as_str(),
                        "another request is creating this room's meeting; retry shortly",
                    ));
                }
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(left.clamp(Duration::from_millis(10), CLAIM_POLL)).await;
            }
        }
    };

    let created = match create_at_whereby(state, &room, settings).await {
        Ok(created) => created,
        Err(e) => {
            release(state, room.id, claim.token).await;
            return Err(e);
        }
    };
    let stored = store(state, &room, settings, &replaced, claim, &created).await;
    if stored.is_err() {
        compensate(state, &created.meeting_id).await;
        release(state, room.id, claim.token).await;
    }
    let mut meeting = stored?;
    tracing::info!(room = %room.name, meeting = %meeting.id, whereby_meeting_id = %meeting.whereby_meeting_id, "created meeting");
    // The room's branding, right away; its failure never fails the meeting.
    let outcome = crate::branding::apply(
        state,
        &db::branding::Pending {
            meeting_id: meeting.id,
            room_id: Some(room.id),
            room_name: meeting.room_name.clone(),
            attempts: 0,
        },
    )
    .await;
    meeting.branding_state = outcome.state.map(str::to_owned);
    meeting.branding_error = outcome.error;
    meeting.branding_attempts = outcome.attempts;
    Ok(MeetingForRoom {
        room,
        meeting,
        created: true,
    })
}

/// Under the room's row lock: reuse, wait for another request's claim, or claim.
async fn decide(
    conn: &mut AsyncPgConnection,
    key: &RoomKey,
    caller: &Caller,
    claim_for: Duration,
) -> Result<Decision, Failure> {
    let locked = match key {
        RoomKey::Name(name) => rooms::lock_by_name(conn, name.as_str()).await?,
        // By id: its name, then the row locked by that name (still the same row).
        RoomKey::Id(id) => match rooms::find(conn, *id).await? {
            Some(room) => rooms::lock_by_name(conn, &room.name)
                .await?
                .filter(|r| r.id == *id),
            None => None,
        },
        RoomKey::Neither(_) => None,
    };
    let room = locked
        .filter(|r| access::sees_room(r, caller))
        .ok_or_else(|| Failure::Api(key.not_found()))?;
    let settings = room
        .settings()
        .map_err(|e| Failure::Api(errors::corrupt(e)))?;
    let active = meetings::active_for_room(conn, room.id).await?;
    let candidates = active
        .iter()
        .map(MeetingRow::as_active)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::Api(errors::corrupt(e)))?;
    let now = Utc::now();
    match reuse_decision(&settings, &candidates, now) {
        MeetingReuse::Reuse(id) => {
            let meeting = active
                .into_iter()
                .find(|m| m.id == id)
                .ok_or_else(|| Failure::Api(ApiError::internal()))?;
            Ok(Decision::Found(Box::new(MeetingForRoom {
                room,
                meeting,
                created: false,
            })))
        }
        MeetingReuse::CreateReplacing(replaced) => {
            if let Some(live) = rooms::creation_claim(conn, room.id)
                .await?
                .filter(|c| c.until > now)
            {
                return Ok(Decision::Wait(live.until));
            }
            let claim = CreationClaim {
                token: uuid::Uuid::new_v4(),
                until: now + chrono::Duration::from_std(claim_for).unwrap_or(chrono::Duration::MAX),
            };
            rooms::set_creation_claim(conn, room.id, claim).await?;
            Ok(Decision::Claimed {
                room: Box::new(room),
                settings,
                replaced,
                claim,
            })
        }
    }
}

async fn create_at_whereby(
    state: &AppState,
    room: &RoomRow,
    settings: domain::RoomSettings,
) -> Result<whereby::Meeting, ApiError> {
    let name = domain::RoomName::parse(&room.name).map_err(errors::corrupt)?;
    let end_date = Utc::now()
        + chrono::Duration::from_std(state.meeting_duration)
            .unwrap_or_else(|_| chrono::Duration::hours(8));
    let request = CreateMeeting::for_room(
        name.whereby_prefix(),
        end_date,
        settings.is_locked,
        settings.room_mode,
        settings.recording_type,
        settings.recording_trigger,
        &state.recording_destination,
    );
    state
        .whereby
        .create_meeting(&request)
        .await
        .map_err(|e| errors::whereby(&e))
}

/// Stores the created meeting if the claim still stands (and clears it), in one
/// short transaction.
async fn store(
    state: &AppState,
    room: &RoomRow,
    settings: domain::RoomSettings,
    replaced: &[uuid::Uuid],
    claim: CreationClaim,
    created: &whereby::Meeting,
) -> Result<MeetingRow, ApiError> {
    let invalid = |why: &str| errors::whereby(&WherebyError::InvalidResponse(why.to_owned()));
    let room_name = created.room_name().ok_or_else(|| invalid("no room name"))?;
    let start_date = created.start_date.unwrap_or_else(Utc::now);
    if created.end_date <= start_date {
        return Err(invalid("endDate is not after startDate"));
    }
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    conn.transaction::<_, Failure, _>(async |conn| {
        if !rooms::clear_creation_claim(conn, room.id, claim.token).await? {
            // The room was deleted meanwhile (its meetings ended with it)...
            if rooms::find(conn, room.id).await?.is_none() {
                return Err(Failure::Api(RoomKey::Id(room.id).not_found()));
            }
            // ...or the claim lapsed (this request took longer than Whereby's
            // longest call allows) and another request may be creating one now.
            return Err(Failure::Api(ApiError::unavailable(
                ErrorCode::Busy.as_str(),
                "creating the meeting took too long; retry",
            )));
        }
        let row = meetings::insert(
            conn,
            &NewMeeting {
                id: uuid::Uuid::new_v4(),
                room_id: room.id,
                owner: &room.owner,
                whereby_meeting_id: &created.meeting_id,
                room_name: &room_name,
                room_url: &created.room_url,
                host_room_url: created.host_room_url.as_deref(),
                start_date,
                end_date: created.end_date,
                is_locked: settings.is_locked,
                room_mode: settings.room_mode.as_str(),
                recording_type: settings.recording_type.as_str(),
                recording_trigger: settings.recording_trigger.as_str(),
                platform: settings.platform.as_str(),
            },
        )
        .await?;
        let n = meetings::deactivate(conn, replaced).await?;
        if n > 0 {
            tracing::info!(room = %room.name, replaced = n, "deactivated meetings whose settings no longer match the room");
        }
        Ok(row)
    })
    .await
    .map_err(ApiError::from)
}

/// Gives the claim back after a failed creation (best effort: it lapses anyway).
async fn release(state: &AppState, room_id: uuid::Uuid, token: uuid::Uuid) {
    let released = match state.pool.get().await {
        Ok(mut conn) => rooms::clear_creation_claim(&mut conn, room_id, token)
            .await
            .is_ok(),
        Err(_) => false,
    };
    if !released {
        tracing::warn!(%room_id, "could not release the meeting-creation claim; it lapses at its deadline");
    }
}

/// The room's reusable meeting, read without locking; `None` when there is none
/// (or the room is missing: the locked path reports that).
async fn reusable(
    conn: &mut AsyncPgConnection,
    key: &RoomKey,
    caller: &Caller,
) -> Result<Option<MeetingForRoom>, ApiError> {
    let Some(room) = key
        .find(conn)
        .await
        .map_err(errors::query)?
        .filter(|r| access::sees_room(r, caller))
    else {
        return Ok(None);
    };
    let settings = room.settings().map_err(errors::corrupt)?;
    let active = meetings::active_for_room(conn, room.id)
        .await
        .map_err(errors::query)?;
    let candidates = active
        .iter()
        .map(MeetingRow::as_active)
        .collect::<Result<Vec<_>, _>>()
        .map_err(errors::corrupt)?;
    match reuse_decision(&settings, &candidates, Utc::now()) {
        MeetingReuse::Reuse(id) => {
            Ok(active
                .into_iter()
                .find(|m| m.id == id)
                .map(|meeting| MeetingForRoom {
                    room,
                    meeting,
                    created: false,
                }))
        }
        MeetingReuse::CreateReplacing(_) => Ok(None),
    }
}

/// Deletes a Whereby meeting that we created but could not store.
async fn compensate(state: &AppState, whereby_meeting_id: &str) {
    match state.whereby.delete_meeting(whereby_meeting_id).await {
        Ok(()) => tracing::warn!(
            whereby_meeting_id,
            "deleted the Whereby meeting of a failed request"
        ),
        Err(e) => {
            tracing::error!(whereby_meeting_id, error = %e, "could not delete the Whereby meeting of a failed request; it expires at its end date")
        }
    }
}
