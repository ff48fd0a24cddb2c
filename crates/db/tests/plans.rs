//! The hot paths' queries use their partial indexes even as prepared statements
//! with a generic plan, which is what a pooled connection runs after a few
//! executions. A predicate sent as a bind parameter (`is_active = $2`) cannot be
//! matched against an index's `WHERE is_active`: every call then scans the table
//! (the create-meeting reuse path ran at a quarter of the speed of a read).

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use test_support::TestDatabase;

#[derive(diesel::QueryableByName)]
struct Scans {
    #[diesel(sql_type = BigInt)]
    index_scans: i64,
    #[diesel(sql_type = BigInt)]
    table_scans: i64,
}

/// This transaction's scans of `meetings` so far: through an index (the only one
/// that can serve a room's meetings is `meetings_room_active_idx`), and sequential.
async fn scans(conn: &mut AsyncPgConnection) -> Scans {
    let rows: Vec<Scans> = diesel::sql_query(
        "SELECT coalesce(idx_scan, 0)::bigint AS index_scans, \
                coalesce(seq_scan, 0)::bigint AS table_scans \
         FROM pg_stat_xact_user_tables WHERE relname = 'meetings'",
    )
    .load(conn)
    .await
    .expect("scan counts");
    rows.into_iter().next().expect("one row")
}

#[tokio::test]
async fn a_rooms_active_meetings_are_read_through_the_partial_index() {
    let db = TestDatabase::new().await;
    TestDatabase::execute(
        &db,
        "INSERT INTO rooms (id, name, owner) \
         SELECT gen_random_uuid(), 'room-' || g, 'alice' FROM generate_series(1, 200) g",
    )
    .await;
    TestDatabase::execute(
        &db,
        "INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, \
           start_date, end_date, is_active, is_locked, room_mode, recording_type, \
           recording_trigger, platform) \
         SELECT gen_random_uuid(), r.id, 'alice', 'w-' || r.name || '-' || g, '/' || r.name, \
           'https://x/' || r.name, now(), now() + interval '1 hour', g = 1, false, 'normal', \
           'cloud', 'none', 'whereby' \
         FROM rooms r, generate_series(1, 20) g",
    )
    .await;
    TestDatabase::execute(&db, "ANALYZE meetings").await;
    let room_id: uuid::Uuid = {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: uuid::Uuid,
        }
        let mut conn = AsyncPgConnection::establish(&db.url)
            .await
            .expect("connect");
        let ids: Vec<Id> = diesel::sql_query("SELECT id FROM rooms WHERE name = 'room-7'")
            .load(&mut conn)
            .await
            .expect("room");
        ids.into_iter().next().expect("room-7").id
    };

    let mut conn = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    diesel::sql_query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut conn)
        .await
        .expect("generic plans");
    diesel::sql_query("BEGIN")
        .execute(&mut conn)
        .await
        .expect("begin");
    let before = scans(&mut conn).await;
    for _ in 0..10 {
        let active = db::meetings::active_for_room(&mut conn, room_id)
            .await
            .expect("active meetings");
        assert_eq!(active.len(), 1, "one of the room's 20 meetings is active");
    }
    let after = scans(&mut conn).await;
    assert!(
        after.index_scans - before.index_scans >= 10,
        "every call goes through the partial index: {} index scans",
        after.index_scans - before.index_scans
    );
    assert_eq!(
        after.table_scans, before.table_scans,
        "no call scans the whole table"
    );
}
