//! The recordings API: the owner's view with a working presigned URL, operators'
//! listing, and the pipeline's status reports.

use reqwest::Method;
use serde_json::{Value, json};
use test_support::TestAws;

use crate::helpers::{error_code, spawn_app, token};

/// A recording of `meeting` in `bucket` with `status`; returns its id.
async fn insert_recording(
    app: &crate::helpers::TestApp,
    meeting: Option<&str>,
    bucket: &str,
    key: &str,
    status: &str,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let meeting = meeting.map_or("NULL".to_owned(), |m| format!("'{m}'"));
    let reason = if status == "unmatched" {
        "'no meeting with this room name'"
    } else {
        "NULL"
    };
    app.db
        .execute(&format!(
            "INSERT INTO recordings (id, bucket, object_key, meeting_id, status, size_bytes, unmatched_reason, recorded_at, room_name) \
             VALUES ('{id}', '{bucket}', '{key}', {meeting}, '{status}', 5, {reason}, now(), '/room')"
        ))
        .await;
    id
}

#[tokio::test]
async fn the_owner_sees_recordings_and_downloads_them_with_a_presigned_url() {
    let app = spawn_app().await;
    let aws = TestAws::new().await;
    aws.put("room-2030-01-01T09:05:30Z.mp4", b"hello").await;
    app.create_room("alice", json!({"name": "shared", "is_shared": true}))
        .await;
    let (_, meeting) = app.meeting("shared", "alice").await;
    let mid = meeting["id"].as_str().expect("id");
    let rid = insert_recording(
        &app,
        Some(mid),
        &aws.bucket,
        "room-2030-01-01T09:05:30Z.mp4",
        "queued",
    )
    .await;

    let list: Value = app
        .get(&format!("/v1/meetings/{mid}/recordings"), "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["id"], rid);
    assert_eq!(list[0]["status"], "queued");
    assert!(list[0].get("download_url").is_none());

    let one: Value = app
        .get(&format!("/v1/recordings/{rid}"), "alice")
        .await
        .json()
        .await
        .expect("json");
    let url = one["download_url"].as_str().expect("a download URL");
    let body = reqwest::get(url)
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&body[..], b"hello", "the presigned URL serves the object");

    // Others: a shared room's meetings are visible, their recordings are not.
    error_code(
        app.get(&format!("/v1/meetings/{mid}/recordings"), "bob")
            .await,
        403,
    )
    .await;
    error_code(app.get(&format!("/v1/recordings/{rid}"), "bob").await, 404).await;
    error_code(app.get("/v1/recordings/not-a-uuid", "alice").await, 404).await;
}

#[tokio::test]
async fn operators_list_recordings_by_status() {
    let app = spawn_app().await;
    let unmatched = insert_recording(
        &app,
        None,
        "b",
        "lost-2030-01-01T09:05:30Z.mp4",
        "unmatched",
    )
    .await;
    insert_recording(&app, None, "b", "other.mp4", "unmatched").await;
    let page: Value = app
        .get("/v1/recordings?status=unmatched&size=1", "ops-2")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        page["items"][0]["unmatched_reason"],
        "no meeting with this room name"
    );
    let default: Value = app
        .get("/v1/recordings", "ops-1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(default["total"], 2, "unmatched by default");
    let one: Value = app
        .get(&format!("/v1/recordings/{unmatched}"), "ops-1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(one["status"], "unmatched");
    error_code(
        app.get("/v1/recordings?status=unmatched", "alice").await,
        403,
    )
    .await;
    error_code(
        app.get(&format!("/v1/recordings/{unmatched}"), "alice")
            .await,
        404,
    )
    .await;
    let err = error_code(app.get("/v1/recordings?status=lost", "ops-1").await, 422).await;
    assert_eq!(err["field"], "status");
}

#[tokio::test]
async fn the_pipeline_reports_status_forward_only() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    let (_, meeting) = app.meeting("standup", "alice").await;
    let rid = insert_recording(&app, meeting["id"].as_str(), "b", "k.mp4", "queued").await;
    let path = format!("/v1/internal/recordings/{rid}/status");
    let report = async |who: &str, status: &str| {
        app.request(
            Method::POST,
            &path,
            Some(&token(who)),
            Some(&json!({"status": status})),
        )
        .await
    };
    error_code(report("alice", "done").await, 403).await;
    for status in ["processing", "processing", "done", "done"] {
        let res = report("svc-pipeline", status).await;
        assert_eq!(res.status().as_u16(), 200, "{status}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["status"], status);
    }
    let err = error_code(report("svc-pipeline", "processing").await, 409).await;
    assert_eq!(err["code"], "status_conflict");
    error_code(report("svc-pipeline", "queued").await, 422).await;
    error_code(report("svc-pipeline", "finished").await, 422).await;
    assert_eq!(
        app.db
            .count("SELECT 1 FROM recordings WHERE status = 'done' AND done_at IS NOT NULL")
            .await,
        1
    );
    let missing = app
        .request(
            Method::POST,
            "/v1/internal/recordings/00000000-0000-0000-0000-000000000000/status",
            Some(&token("svc-pipeline")),
            Some(&json!({"status": "done"})),
        )
        .await;
    error_code(missing, 404).await;
}
