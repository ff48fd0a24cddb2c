use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain::{PageRequest, RoomSettings, ValidationError};
use uuid::Uuid;

use crate::schema::rooms;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = rooms, check_for_backend(diesel::pg::Pg))]
pub struct RoomRow {
    pub id: Uuid,
    pub name: String,
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub is_locked: bool,
    pub room_mode: String,
    pub recording_type: String,
    pub recording_trigger: String,
    pub is_shared: bool,
    pub platform: String,
}

impl RoomRow {
    /// The room's settings as domain values. The CHECK constraints make a failure
    /// here a schema/code mismatch, reported rather than papered over.
    pub fn settings(&self) -> Result<RoomSettings, ValidationError> {
        Ok(RoomSettings {
            platform: self.platform.parse()?,
            recording_type: self.recording_type.parse()?,
            recording_trigger: self.recording_trigger.parse()?,
            is_locked: self.is_locked,
            room_mode: self.room_mode.parse()?,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = rooms)]
pub struct NewRoom<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub owner: &'a str,
    pub is_locked: bool,
    pub room_mode: &'a str,
    pub recording_type: &'a str,
    pub recording_trigger: &'a str,
    pub is_shared: bool,
    pub platform: &'a str,
}

impl<'a> NewRoom<'a> {
    pub fn new(name: &'a str, owner: &'a str, settings: &RoomSettings, is_shared: bool) -> Self {
        Self {
            id: Uuid::new_v4(),
            name,
            owner,
            is_locked: settings.is_locked,
            room_mode: settings.room_mode.as_str(),
            recording_type: settings.recording_type.as_str(),
            recording_trigger: settings.recording_trigger.as_str(),
            is_shared,
            platform: settings.platform.as_str(),
        }
    }
}

/// The columns a PATCH may change; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = rooms)]
pub struct RoomChanges<'a> {
    pub name: Option<&'a str>,
    pub is_locked: Option<bool>,
    pub room_mode: Option<&'a str>,
    pub recording_type: Option<&'a str>,
    pub recording_trigger: Option<&'a str>,
    pub is_shared: Option<bool>,
    pub platform: Option<&'a str>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub async fn insert(conn: &mut AsyncPgConnection, room: &NewRoom<'_>) -> QueryResult<RoomRow> {
    diesel::insert_into(rooms::table)
        .values(room)
        .returning(RoomRow::as_returning())
        .get_result(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<RoomRow>> {
    rooms::table
        .find(id)
        .select(RoomRow::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find_by_name(
    conn: &mut AsyncPgConnection,
    name: &str,
) -> QueryResult<Option<RoomRow>> {
    rooms::table
        .filter(rooms::name.eq(name))
        .select(RoomRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Reads the room and locks its row until the transaction ends: the serialisation
/// point for creating a room's meeting across all replicas.
pub async fn lock_by_name(
    conn: &mut AsyncPgConnection,
    name: &str,
) -> QueryResult<Option<RoomRow>> {
    rooms::table
        .filter(rooms::name.eq(name))
        .select(RoomRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Rooms `user` owns or that are shared, newest first, with the total count (the
/// rule of room-api's `access::sees_room`, as a query).
pub async fn list_visible(
    conn: &mut AsyncPgConnection,
    user: &str,
    page: PageRequest,
) -> QueryResult<(Vec<RoomRow>, i64)> {
    let visible = || rooms::table.filter(rooms::owner.eq(user).or(rooms::is_shared));
    let total = visible().count().get_result(conn).await?;
    let items = visible()
        .select(RoomRow::as_select())
        .order((rooms::created_at.desc(), rooms::id.desc()))
        .limit(i64::from(page.size))
        .offset(page.offset())
        .load(conn)
        .await?;
    Ok((items, total))
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &RoomChanges<'_>,
) -> QueryResult<RoomRow> {
    diesel::update(rooms::table.find(id))
        .set(changes)
        .returning(RoomRow::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::delete(rooms::table.find(id)).execute(conn).await
}

/// A claim on creating a room's meeting (see the migration
/// `meeting_creation_claims`): who holds it and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreationClaim {
    pub token: Uuid,
    pub until: DateTime<Utc>,
}

/// The room's current claim, if any (read it under the room's row lock).
pub async fn creation_claim(
    conn: &mut AsyncPgConnection,
    room_id: Uuid,
) -> QueryResult<Option<CreationClaim>> {
    let (token, until): (Option<Uuid>, Option<DateTime<Utc>>) = rooms::table
        .find(room_id)
        .select((rooms::meeting_claim, rooms::meeting_claim_until))
        .first(conn)
        .await?;
    Ok(token
        .zip(until)
        .map(|(token, until)| CreationClaim { token, until }))
}

/// Sets the room's claim (under its row lock, after checking there is none live).
pub async fn set_creation_claim(
    conn: &mut AsyncPgConnection,
    room_id: Uuid,
    claim: CreationClaim,
) -> QueryResult<()> {
    diesel::update(rooms::table.find(room_id))
        .set((
            rooms::meeting_claim.eq(Some(claim.token)),
            rooms::meeting_claim_until.eq(Some(claim.until)),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Clears the claim if it is still `token`'s; `false` when it was not (it lapsed
/// and someone else claimed the room).
pub async fn clear_creation_claim(
    conn: &mut AsyncPgConnection,
    room_id: Uuid,
    token: Uuid,
) -> QueryResult<bool> {
    diesel::update(
        rooms::table
            .find(room_id)
            .filter(rooms::meeting_claim.eq(token)),
    )
    .set((
        rooms::meeting_claim.eq(None::<Uuid>),
        rooms::meeting_claim_until.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}
