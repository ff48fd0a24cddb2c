//! Personal-data retention against the real schema: old names and external ids
//! removed, old payloads reduced to what deduplication needs, very old inbox rows
//! deleted; recent data untouched; storage figures by status.

use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use test_support::TestDatabase;

#[tokio::test]
async fn retention_removes_what_is_old_and_nothing_else() {
    let db = TestDatabase::new().await;
    TestDatabase::execute(&db, "INSERT INTO rooms (id, name, owner) VALUES ('00000000-0000-0000-0000-000000000001', 'r', 'a')").await;
    TestDatabase::execute(&db, "INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, is_locked, room_mode, recording_type, recording_trigger, platform) VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', 'a', 'w1', '/r', 'u', now() - interval '60 days', now() - interval '59 days', false, 'normal', 'cloud', 'none', 'whereby')").await;
    for (p, age) in [("old", "40 days"), ("new", "1 day")] {
        TestDatabase::execute(
            &db,
            &format!(
                "INSERT INTO meeting_participants (meeting_id, participant_id, display_name, external_id, is_person, state, state_as_of, state_event_id) \
                 VALUES ('00000000-0000-0000-0000-000000000002', 'p-{p}', 'Name {p}', 'ext-{p}', true, 'left', now() - interval '{age}', 'e-{p}')"
            ),
        )
        .await;
    }
    for (e, age) in [
        ("ancient", "100 days"),
        ("old", "40 days"),
        ("new", "1 day"),
    ] {
        TestDatabase::execute(
            &db,
            &format!(
                "INSERT INTO webhook_events (event_id, event_type, created_at, received_at, outcome, payload) \
                 VALUES ('e-{e}', 'room.client.joined', now() - interval '{age}', now() - interval '{age}', 'applied', \
                 '{{\"id\":\"e-{e}\",\"data\":{{\"displayName\":\"Name\"}}}}')"
            ),
        )
        .await;
    }
    let mut conn = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    let now = Utc::now();
    let r = db::privacy::apply_retention(
        &mut conn,
        now - Duration::days(30),
        now - Duration::days(90),
    )
    .await
    .expect("retention");
    assert_eq!(
        (r.participants_erased, r.events_reduced, r.events_deleted),
        (1, 2, 1),
        "{r:?}"
    );
    let count = |sql: &'static str| TestDatabase::count(&db, sql);
    assert_eq!(count("SELECT 1 FROM meeting_participants WHERE participant_id = 'p-old' AND display_name IS NULL AND external_id IS NULL").await, 1);
    assert_eq!(count("SELECT 1 FROM meeting_participants WHERE participant_id = 'p-new' AND display_name = 'Name new'").await, 1);
    assert_eq!(
        count("SELECT 1 FROM webhook_events WHERE event_id = 'e-ancient'").await,
        0
    );
    assert_eq!(count("SELECT 1 FROM webhook_events WHERE event_id = 'e-old' AND reduced_at IS NOT NULL AND NOT payload ? 'data' AND payload->>'type' = 'room.client.joined'").await, 1);
    assert_eq!(count("SELECT 1 FROM webhook_events WHERE event_id = 'e-new' AND reduced_at IS NULL AND payload ? 'data'").await, 1);
    // A second run finds nothing more.
    let again = db::privacy::apply_retention(
        &mut conn,
        now - Duration::days(30),
        now - Duration::days(90),
    )
    .await
    .expect("retention");
    assert_eq!(again, db::privacy::Retention::default());

    TestDatabase::execute(&db, "INSERT INTO recordings (id, bucket, object_key, status, size_bytes) VALUES (gen_random_uuid(), 'b', 'k1', 'done', 100), (gen_random_uuid(), 'b', 'k2', 'done', 50), (gen_random_uuid(), 'b', 'k3', 'queued', NULL)").await;
    let mut figures = db::privacy::recordings_by_status(&mut conn)
        .await
        .expect("figures");
    figures.sort();
    assert_eq!(
        figures,
        [("done".to_owned(), 2, 150), ("queued".to_owned(), 1, 0)]
    );
}
