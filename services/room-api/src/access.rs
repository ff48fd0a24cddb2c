//! Who may see or change what. Every route that reads a room, a meeting or a
//! recording on a caller's behalf comes through here, so each rule is written once:
//!
//! - a room is seen by its owner and, when it is shared, by everyone;
//! - a meeting is seen by its owner (the room's owner) and, when its room is
//!   shared, by everyone;
//! - a recording is seen by the owner of its meeting, and by operators;
//! - only the owner changes a room or a meeting, or sees who took part.
//!
//! What a caller cannot see answers the same 404 as what does not exist; what they
//! can see but not change answers 403.

use db::{AsyncPgConnection, meetings::MeetingRow, recordings::RecordingRow, rooms::RoomRow};
use domain::RoomName;
use uuid::Uuid;
use web_common::ApiError;

use crate::{auth::Caller, errors};

/// What the caller means to do with a room or a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read it.
    See,
    /// Change it, or read what only its owner reads; the action, for the 403
    /// ("only the room's owner may …").
    Own(&'static str),
}

/// At most this much of a caller's path segment is quoted back in a 404.
const QUOTED: usize = 80;

fn quoted(raw: &str) -> String {
    raw.chars().take(QUOTED).collect()
}

/// Ids in paths are UUIDs; anything else cannot name a resource.
pub fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| {
        ApiError::not_found(format!(
            "no {what} with id '{}' ({what} ids are UUIDs)",
            quoted(raw)
        ))
    })
}

/// How a path names a room: by its id or by its name (a name is never a UUID, so
/// the two cannot be confused). Anything else names no room.
#[derive(Debug, Clone)]
pub enum RoomKey {
    Id(Uuid),
    Name(RoomName),
    Neither(String),
}

impl RoomKey {
    pub fn parse(raw: &str) -> Self {
        if let Ok(id) = Uuid::try_parse(raw) {
            Self::Id(id)
        } else if let Ok(name) = RoomName::parse(raw) {
            Self::Name(name)
        } else {
            Self::Neither(raw.to_owned())
        }
    }

    /// The same 404 whether the room is missing or hidden from the caller.
    pub fn not_found(&self) -> ApiError {
        match self {
            Self::Id(id) => ApiError::not_found(format!("no room with id or name '{id}'")),
            Self::Name(name) => ApiError::not_found(format!("no room with id or name '{name}'")),
            Self::Neither(raw) => ApiError::not_found(format!(
                "no room with id or name '{}': a room is named by its id (a UUID) or its name \
                 (lowercase letters, digits and single hyphens)",
                quoted(raw)
            )),
        }
    }

    /// The room, if it exists (visible or not).
    pub async fn find(
        &self,
        conn: &mut AsyncPgConnection,
    ) -> Result<Option<RoomRow>, db::QueryError> {
        match self {
            Self::Id(id) => db::rooms::find(conn, *id).await,
            Self::Name(name) => db::rooms::find_by_name(conn, name.as_str()).await,
            // Not looked up: it cannot match, and Postgres refuses some text (NUL).
            Self::Neither(_) => Ok(None),
        }
    }
}

/// Whether the caller may see the room.
pub fn sees_room(room: &RoomRow, caller: &Caller) -> bool {
    room.is_shared || room.owner == caller.id()
}

fn only_the_owner(action: &str) -> ApiError {
    ApiError::forbidden(format!("only the room's owner may {action}"))
}

/// The room `key` names, for `access` (404 when the caller cannot see it, whether
/// it exists or not; 403 when they can see it but `access` is [`Access::Own`] and
/// they do not own it).
pub async fn room(
    conn: &mut AsyncPgConnection,
    key: &RoomKey,
    caller: &Caller,
    access: Access,
) -> Result<RoomRow, ApiError> {
    let room = key
        .find(conn)
        .await
        .map_err(errors::query)?
        .filter(|r| sees_room(r, caller))
        .ok_or_else(|| key.not_found())?;
    if let Access::Own(action) = access
        && room.owner != caller.id()
    {
        return Err(only_the_owner(action));
    }
    Ok(room)
}

/// The meeting with id `raw`, for `access`, with the same 404 and 403 as [`room`].
pub async fn meeting(
    conn: &mut AsyncPgConnection,
    raw: &str,
    caller: &Caller,
    access: Access,
) -> Result<MeetingRow, ApiError> {
    let id = parse_id(raw, "meeting")?;
    let not_found = || ApiError::not_found(format!("no meeting with id '{id}'"));
    let meeting = db::meetings::find(conn, id)
        .await
        .map_err(errors::query)?
        .ok_or_else(not_found)?;
    if meeting.owner == caller.id() {
        return Ok(meeting);
    }
    let shared = match meeting.room_id {
        Some(room_id) => db::rooms::find(conn, room_id)
            .await
            .map_err(errors::query)?
            .is_some_and(|r| r.is_shared),
        None => false,
    };
    match (shared, access) {
        (false, _) => Err(not_found()),
        (true, Access::Own(action)) => Err(only_the_owner(action)),
        (true, Access::See) => Ok(meeting),
    }
}

/// The recording with id `raw`: the owner of its meeting sees it, operators see
/// every recording; 404 for anyone else.
pub async fn recording(
    conn: &mut AsyncPgConnection,
    raw: &str,
    caller: &Caller,
) -> Result<RecordingRow, ApiError> {
    let id = parse_id(raw, "recording")?;
    let not_found = || ApiError::not_found(format!("no recording with id '{id}'"));
    let row = db::recordings::find(conn, id)
        .await
        .map_err(errors::query)?
        .ok_or_else(not_found)?;
    if caller.is_operator() {
        return Ok(row);
    }
    let owner = match row.meeting_id {
        Some(meeting_id) => db::meetings::find(conn, meeting_id)
            .await
            .map_err(errors::query)?
            .map(|m| m.owner),
        None => None,
    };
    if owner.as_deref() == Some(caller.id()) {
        Ok(row)
    } else {
        Err(not_found())
    }
}

/// 403 unless the caller is an operator; `what` names the action refused.
pub fn operator(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.is_operator() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("{what} is for operators")))
    }
}

/// 403 unless the caller is an internal service; `what` names the action refused.
pub fn service(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.is_service() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{what} is for internal services"
        )))
    }
}
