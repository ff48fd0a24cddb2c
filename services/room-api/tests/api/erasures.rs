//! Personal data erased on request: one meeting (participants, webhook payloads,
//! recordings in the bucket) or one person across meetings; operators only,
//! idempotent, audited without the erased data.

use serde_json::{Value, json};
use test_support::TestAws;

use crate::helpers::{TestApp, error_code, spawn_app};

/// A meeting of a new room with two participants and their join events.
async fn meeting_with_people(app: &TestApp, room: &str, external: &str) -> String {
    app.create_room("alice", json!({"name": room})).await;
    let (_, meeting) = app.meeting(room, "alice").await;
    let mid = meeting["id"].as_str().expect("id").to_owned();
    for (p, name, ext) in [
        ("p-ada", "Ada Lovelace", external),
        ("p-bob", "Bob", "other-person"),
    ] {
        let pid = format!("{p}-{room}");
        app.db
            .execute(&format!(
                "INSERT INTO meeting_participants (meeting_id, participant_id, display_name, external_id, is_person, state, state_as_of, state_event_id) \
                 VALUES ('{mid}', '{pid}', '{name}', '{ext}', true, 'joined', now(), 'e-{pid}')"
            ))
            .await;
        app.db
            .execute(&format!(
                "INSERT INTO webhook_events (event_id, event_type, meeting_id, created_at, received_at, outcome, payload) \
                 VALUES ('e-{pid}', 'room.client.joined', '{mid}', now(), now(), 'applied', \
                 '{{\"id\":\"e-{pid}\",\"type\":\"room.client.joined\",\"data\":{{\"participantId\":\"{pid}\",\"displayName\":\"{name}\",\"externalId\":\"{ext}\"}}}}')"
            ))
            .await;
    }
    mid
}

async fn erase(app: &TestApp, user: &str, body: Value) -> reqwest::Response {
    app.post("/v1/erasures", user, &body).await
}

#[tokio::test]
async fn a_meeting_is_erased_with_its_recordings_once_and_audited() {
    let app = spawn_app().await;
    let aws = TestAws::new().await;
    let mid = meeting_with_people(&app, "erase-me", "user-42").await;
    let key = "erase-me-2030-01-01T09:05:30Z.mp4";
    aws.put(key, b"a recording").await;
    app.db
        .execute(&format!(
            "INSERT INTO recordings (id, bucket, object_key, meeting_id, status, size_bytes) \
             VALUES (gen_random_uuid(), '{}', '{key}', '{mid}', 'done', 11)",
            aws.bucket
        ))
        .await;

    // Not an operator: refused, nothing changed.
    let res = erase(&app, "alice", json!({"meeting_id": mid})).await;
    assert_eq!(error_code(res, 403).await["code"], "forbidden");
    assert!(aws.exists(key).await);

    let res = erase(&app, "ops-1", json!({"meeting_id": mid})).await;
    assert_eq!(res.status().as_u16(), 200);
    let report: Value = res.json().await.expect("json");
    assert_eq!(
        (
            report["participants_erased"].as_i64(),
            report["events_reduced"].as_i64(),
            report["recordings_erased"].as_i64(),
            report["recordings_left"].as_i64()
        ),
        (Some(2), Some(2), Some(1), Some(0)),
        "{report}"
    );
    assert!(!aws.exists(key).await, "the object is gone from the bucket");
    assert_eq!(
        app.db
            .count("SELECT 1 FROM meeting_participants WHERE display_name IS NOT NULL OR external_id IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        app.db
            .count("SELECT 1 FROM webhook_events WHERE reduced_at IS NOT NULL AND NOT payload ? 'data' AND payload->>'id' = event_id")
            .await,
        2
    );
    assert_eq!(
        app.db
            .count("SELECT 1 FROM recordings WHERE status = 'erased' AND erased_at IS NOT NULL")
            .await,
        1
    );
    // The audit row: who, what kind, counts; never the data.
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT 1 FROM erasures WHERE requested_by = 'ops-1' AND subject_kind = 'meeting' AND meeting_id = '{mid}' \
                 AND participants_erased = 2 AND recordings_erased = 1"
            ))
            .await,
        1
    );
    // Again: nothing left to erase, and audited again.
    let again: Value = erase(&app, "ops-2", json!({"meeting_id": mid}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["participants_erased"], 0);
    assert_eq!(again["recordings_erased"], 0);
    assert_eq!(app.db.count("SELECT 1 FROM erasures").await, 2);
    // Storage figures by status, from our table.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("roomapi_recordings{status=\"erased\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roomapi_recording_bytes{status=\"erased\"} 11"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roomapi_recordings{status=\"done\"} 0"),
        "{metrics}"
    );
    // The erased recording shows as such to its owner.
    let list: Value = app
        .get(&format!("/v1/meetings/{mid}/recordings"), "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["status"], "erased");
}

#[tokio::test]
async fn a_person_is_erased_everywhere_and_nobody_else() {
    let app = spawn_app().await;
    let first = meeting_with_people(&app, "one", "user-7").await;
    let second = meeting_with_people(&app, "two", "user-7").await;
    let res = erase(&app, "ops-1", json!({"external_id": "user-7"})).await;
    assert_eq!(res.status().as_u16(), 200);
    let report: Value = res.json().await.expect("json");
    assert_eq!(report["participants_erased"], 2, "{report}");
    assert_eq!(report["events_reduced"], 2, "{report}");
    for mid in [&first, &second] {
        assert_eq!(
            app.db
                .count(&format!(
                    "SELECT 1 FROM meeting_participants WHERE meeting_id = '{mid}' AND display_name IS NULL AND external_id IS NULL"
                ))
                .await,
            1
        );
    }
    // Bob is untouched, and so are his events.
    assert_eq!(
        app.db
            .count("SELECT 1 FROM meeting_participants WHERE display_name = 'Bob' AND external_id = 'other-person'")
            .await,
        2
    );
    assert_eq!(
        app.db
            .count("SELECT 1 FROM webhook_events WHERE reduced_at IS NULL AND payload->'data'->>'displayName' = 'Bob'")
            .await,
        2
    );
    // The audit row holds no external id.
    assert_eq!(
        app.db
            .count(
                "SELECT 1 FROM erasures WHERE subject_kind = 'external_id' AND meeting_id IS NULL"
            )
            .await,
        1
    );
    assert_eq!(
        app.db
            .count("SELECT 1 FROM erasures e WHERE e::text LIKE '%user-7%'")
            .await,
        0
    );
    // By participant id, too.
    let res = erase(&app, "ops-1", json!({"participant_id": "p-bob-one"})).await;
    let report: Value = res.json().await.expect("json");
    assert_eq!(report["participants_erased"], 1, "{report}");
}

#[tokio::test]
async fn an_erasure_needs_exactly_one_subject() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"external_id": "a", "participant_id": "b"}),
        json!({"external_id": ""}),
        json!({"meeting_id": "not-a-uuid"}),
        json!({"name": "x"}),
    ] {
        let res = erase(&app, "ops-1", body.clone()).await;
        assert_eq!(res.status().as_u16(), 422, "{body}");
    }
    assert_eq!(app.db.count("SELECT 1 FROM erasures").await, 0);
}
