//! Which meeting a recording belongs to when a Whereby room name repeats.

use chrono::{TimeZone, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use test_support::TestDatabase;

#[tokio::test]
async fn a_recording_goes_to_the_meeting_whose_time_span_holds_its_start() {
    let db = TestDatabase::new().await;
    db.execute("INSERT INTO rooms (id, name, owner) VALUES ('00000000-0000-0000-0000-000000000001', 'r', 'a')").await;
    // The same Whereby room name twice: a morning and an afternoon meeting.
    for (id, start, end) in [
        (
            "00000000-0000-0000-0000-0000000000a1",
            "2030-01-01 08:00+00",
            "2030-01-01 10:00+00",
        ),
        (
            "00000000-0000-0000-0000-0000000000a2",
            "2030-01-01 14:00+00",
            "2030-01-01 16:00+00",
        ),
    ] {
        db.execute(&format!(
            "INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, \
             is_locked, room_mode, recording_type, recording_trigger, platform) VALUES ('{id}', \
             '00000000-0000-0000-0000-000000000001', 'a', 'w-{id}', '/same-room', 'u', '{start}', '{end}', false, \
             'normal', 'cloud', 'none', 'whereby')"
        ))
        .await;
    }
    let mut conn = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    let at = |h: u32| {
        Utc.with_ymd_and_hms(2030, 1, 1, h, 30, 0)
            .single()
            .expect("time")
    };
    let find = async |conn: &mut AsyncPgConnection, h: u32| {
        db::recordings::meeting_for_recording(conn, "/same-room", at(h))
            .await
            .expect("query")
            .map(|m| m.to_string())
    };
    assert_eq!(
        find(&mut conn, 9).await.as_deref(),
        Some("00000000-0000-0000-0000-0000000000a1")
    );
    // Within the hour Whereby keeps a room after its end.
    assert_eq!(
        find(&mut conn, 10).await.as_deref(),
        Some("00000000-0000-0000-0000-0000000000a1")
    );
    assert_eq!(
        find(&mut conn, 15).await.as_deref(),
        Some("00000000-0000-0000-0000-0000000000a2")
    );
    // Outside every span: the latest meeting with that name.
    assert_eq!(
        find(&mut conn, 21).await.as_deref(),
        Some("00000000-0000-0000-0000-0000000000a2")
    );
    assert_eq!(
        db::recordings::meeting_for_recording(&mut conn, "/other", at(9))
            .await
            .expect("query"),
        None
    );
}
