//! Getting a room's meeting: reuse the active one while it still fits the room,
//! otherwise create one at Whereby. Serialised per room by a row lock in Postgres,
//! so concurrent requests on any number of replicas produce one Whereby meeting.

use chrono::Utc;
use db::{
    AsyncConnection, AsyncPgConnection, QueryError,
    meetings::{self, MeetingRow, NewMeeting},
    rooms::{self, RoomRow},
};
use domain::{MeetingReuse, reuse_decision};
use web_common::ApiError;
use whereby::{CreateMeeting, WherebyError};

use crate::{errors, startup::AppState};

/// How long a request waits for another request's meeting creation on the same
/// room before answering 503. Longer than a Whereby call with its retries.
const ROOM_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

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
    state: &AppState,
    room_name: &str,
    caller: &str,
) -> Result<MeetingForRoom, ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    // The common case first, without a lock: the room already has a meeting that
    // fits. Only when one must be created do we serialise on the room's row (and
    // decide again under the lock).
    if let Some(found) = reusable(&mut conn, room_name, caller).await? {
        return Ok(found);
    }
    // The Whereby meeting id once created, so it can be deleted again if our
    // transaction does not commit: a failed request leaves nothing behind.
    let mut created_at_whereby: Option<String> = None;
    let created_ref = &mut created_at_whereby;
    let result = conn
        .transaction::<_, Failure, _>(async |conn| {
            db::set_local_lock_timeout(conn, ROOM_LOCK_TIMEOUT).await?;
            let room = rooms::lock_by_name(conn, room_name)
                .await?
                .filter(|r| r.visible_to(caller))
                .ok_or_else(|| Failure::Api(ApiError::not_found("no such room")))?;
            let settings = room.settings().map_err(|e| Failure::Api(errors::corrupt(e)))?;
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
                    Ok(MeetingForRoom {
                        room,
                        meeting,
                        created: false,
                    })
                }
                MeetingReuse::CreateReplacing(replaced) => {
                    let meeting = create(conn, state, &room, settings, created_ref).await?;
                    let n = meetings::deactivate(conn, &replaced).await?;
                    if n > 0 {
                        tracing::info!(room = %room.name, replaced = n, "deactivated meetings whose settings no longer match the room");
                    }
                    Ok(MeetingForRoom {
                        room,
                        meeting,
                        created: true,
                    })
                }
            }
        })
        .await;
    if result.is_err()
        && let Some(id) = created_at_whereby
    {
        compensate(state, &id).await;
    }
    result.map_err(ApiError::from)
}

/// The room's reusable meeting, read without locking; `None` when there is none
/// (or the room is missing: the locked path reports that).
async fn reusable(
    conn: &mut AsyncPgConnection,
    room_name: &str,
    caller: &str,
) -> Result<Option<MeetingForRoom>, ApiError> {
    let Some(room) = rooms::find_by_name(conn, room_name)
        .await
        .map_err(errors::query)?
        .filter(|r| r.visible_to(caller))
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

async fn create(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    room: &RoomRow,
    settings: domain::RoomSettings,
    created_ref: &mut Option<String>,
) -> Result<MeetingRow, Failure> {
    let name = domain::RoomName::parse(&room.name).map_err(|e| Failure::Api(errors::corrupt(e)))?;
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
    let created = state
        .whereby
        .create_meeting(&request)
        .await
        .map_err(|e| Failure::Api(errors::whereby(&e)))?;
    *created_ref = Some(created.meeting_id.clone());
    let room_name = created.room_name().ok_or_else(|| {
        Failure::Api(errors::whereby(&WherebyError::InvalidResponse(
            "no room name".to_owned(),
        )))
    })?;
    let start_date = created.start_date.unwrap_or_else(Utc::now);
    if created.end_date <= start_date {
        return Err(Failure::Api(errors::whereby(
            &WherebyError::InvalidResponse("endDate is not after startDate".to_owned()),
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
    tracing::info!(room = %room.name, meeting = %row.id, whereby_meeting_id = %row.whereby_meeting_id, "created meeting");
    Ok(row)
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
