use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain::{ActiveMeeting, RoomSettings, ValidationError};
use uuid::Uuid;

use crate::schema::meetings;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = meetings, check_for_backend(diesel::pg::Pg))]
pub struct MeetingRow {
    pub id: Uuid,
    pub room_id: Option<Uuid>,
    pub owner: String,
    pub whereby_meeting_id: String,
    pub room_name: String,
    pub room_url: String,
    pub host_room_url: Option<String>,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    pub is_locked: bool,
    pub room_mode: String,
    pub recording_type: String,
    pub recording_trigger: String,
    pub platform: String,
    pub num_clients: i32,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `applied`, `pending`, `failed`, or `None` when there was nothing to apply.
    pub branding_state: Option<String>,
    pub branding_error: Option<String>,
    pub branding_attempts: i32,
}

impl MeetingRow {
    /// The room settings this meeting was created with.
    pub fn settings(&self) -> Result<RoomSettings, ValidationError> {
        Ok(RoomSettings {
            platform: self.platform.parse()?,
            recording_type: self.recording_type.parse()?,
            recording_trigger: self.recording_trigger.parse()?,
            is_locked: self.is_locked,
            room_mode: self.room_mode.parse()?,
        })
    }

    pub fn as_active(&self) -> Result<ActiveMeeting<Uuid>, ValidationError> {
        Ok(ActiveMeeting {
            id: self.id,
            settings: self.settings()?,
            end_date: self.end_date,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = meetings)]
pub struct NewMeeting<'a> {
    pub id: Uuid,
    pub room_id: Uuid,
    pub owner: &'a str,
    pub whereby_meeting_id: &'a str,
    pub room_name: &'a str,
    pub room_url: &'a str,
    pub host_room_url: Option<&'a str>,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    pub is_locked: bool,
    pub room_mode: &'a str,
    pub recording_type: &'a str,
    pub recording_trigger: &'a str,
    pub platform: &'a str,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    meeting: &NewMeeting<'_>,
) -> QueryResult<MeetingRow> {
    diesel::insert_into(meetings::table)
        .values(meeting)
        .returning(MeetingRow::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<MeetingRow>> {
    meetings::table
        .find(id)
        .select(MeetingRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The room's meetings still flagged active (whatever their end date), the one
/// ending last first.
pub async fn active_for_room(
    conn: &mut AsyncPgConnection,
    room_id: Uuid,
) -> QueryResult<Vec<MeetingRow>> {
    meetings::table
        .filter(meetings::room_id.eq(room_id))
        .filter(meetings::is_active)
        .select(MeetingRow::as_select())
        .order(meetings::end_date.desc())
        .load(conn)
        .await
}

/// Marks meetings inactive; returns how many changed.
pub async fn deactivate(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(
        meetings::table
            .filter(meetings::id.eq_any(ids))
            .filter(meetings::is_active),
    )
    .set((
        meetings::is_active.eq(false),
        meetings::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await
}

/// Deactivates every active meeting of a room and returns them (for deleting them
/// at Whereby after the transaction commits).
pub async fn deactivate_all_for_room(
    conn: &mut AsyncPgConnection,
    room_id: Uuid,
) -> QueryResult<Vec<MeetingRow>> {
    diesel::update(
        meetings::table
            .filter(meetings::room_id.eq(room_id))
            .filter(meetings::is_active),
    )
    .set((
        meetings::is_active.eq(false),
        meetings::updated_at.eq(Utc::now()),
    ))
    .returning(MeetingRow::as_returning())
    .get_results(conn)
    .await
}

/// Active meetings to end: past their end date, or empty (no one in the room, no
/// session running) for longer than `grace` after their last session ended.
pub async fn due_for_cleanup(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> QueryResult<Vec<MeetingRow>> {
    use crate::schema::meeting_sessions;
    let ended_before = now - grace;
    let running = meeting_sessions::table
        .filter(meeting_sessions::meeting_id.eq(meetings::id))
        .filter(meeting_sessions::ended_at.is_null());
    let ended_long_ago = meeting_sessions::table
        .filter(meeting_sessions::meeting_id.eq(meetings::id))
        .filter(meeting_sessions::ended_at.lt(ended_before));
    meetings::table
        .filter(meetings::is_active)
        .filter(
            meetings::end_date.lt(now).or(meetings::num_clients
                .eq(0)
                .and(diesel::dsl::exists(ended_long_ago))
                .and(diesel::dsl::not(diesel::dsl::exists(running)))),
        )
        .select(MeetingRow::as_select())
        .order(meetings::end_date.asc())
        .limit(500)
        .load(conn)
        .await
}

/// Meetings that are active and not past their end date.
pub async fn count_active(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    meetings::table
        .filter(meetings::is_active)
        .filter(meetings::end_date.gt(Utc::now()))
        .count()
        .get_result(conn)
        .await
}
