//! Room branding and each meeting's branding state.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::{meetings, room_branding};

#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = room_branding, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Branding {
    pub room_id: Uuid,
    pub primary_color: Option<String>,
    pub secondary_color: Option<String>,
    pub focus_color: Option<String>,
    pub logo: Option<Vec<u8>>,
    pub logo_content_type: Option<String>,
    pub background: Option<Vec<u8>>,
    pub background_content_type: Option<String>,
    pub background_palette: Option<String>,
    pub background_theme: Option<String>,
}

impl Branding {
    /// Whether there is anything to apply at all.
    pub fn is_empty(&self) -> bool {
        self.primary_color.is_none()
            && self.secondary_color.is_none()
            && self.focus_color.is_none()
            && self.logo.is_none()
            && self.background.is_none()
            && self.background_palette.is_none()
    }
}

pub async fn get(conn: &mut AsyncPgConnection, room_id: Uuid) -> QueryResult<Option<Branding>> {
    room_branding::table
        .find(room_id)
        .select(Branding::as_select())
        .first(conn)
        .await
        .optional()
}

/// Stores the whole branding of a room (every field, absent ones as NULL).
pub async fn put(conn: &mut AsyncPgConnection, b: &Branding) -> QueryResult<()> {
    diesel::insert_into(room_branding::table)
        .values(b)
        .on_conflict(room_branding::room_id)
        .do_update()
        .set((b, room_branding::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await
        .map(drop)
}

/// A meeting whose branding is to be applied: ids, Whereby's room name, attempts.
#[derive(Debug, Clone, Queryable, QueryableByName)]
pub struct Pending {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub meeting_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub room_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub room_name: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub attempts: i32,
}

/// Claims up to `limit` active meetings whose branding is pending and was last
/// tried before `tried_before`: their `updated_at` moves to now in the same
/// statement, so that concurrent replicas claim different meetings and nobody
/// holds a lock while Whereby is called.
pub async fn claim_pending(
    conn: &mut AsyncPgConnection,
    tried_before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Pending>> {
    diesel::sql_query(
        "UPDATE meetings SET updated_at = now() WHERE id IN ( \
           SELECT id FROM meetings WHERE branding_state = 'pending' AND is_active \
           AND updated_at < $1 ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING id AS meeting_id, room_id, room_name, branding_attempts AS attempts",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(tried_before)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await
}

/// Active meetings of a room (to apply a changed branding to).
pub async fn active_meetings(
    conn: &mut AsyncPgConnection,
    room_id: Uuid,
) -> QueryResult<Vec<Pending>> {
    meetings::table
        .filter(meetings::room_id.eq(room_id))
        .filter(meetings::is_active)
        .filter(meetings::end_date.gt(Utc::now()))
        .select((
            meetings::id,
            meetings::room_id,
            meetings::room_name,
            meetings::branding_attempts,
        ))
        .load(conn)
        .await
}

/// Records the outcome of an attempt: `state` (`None`: nothing to apply).
pub async fn set_state(
    conn: &mut AsyncPgConnection,
    meeting_id: Uuid,
    state: Option<&str>,
    error: Option<&str>,
    attempts: i32,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(meetings::table.find(meeting_id))
        .set((
            meetings::branding_state.eq(state),
            meetings::branding_error.eq(error),
            meetings::branding_attempts.eq(attempts),
            meetings::updated_at.eq(at),
        ))
        .execute(conn)
        .await
        .map(drop)
}
