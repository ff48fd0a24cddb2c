use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    AWS_KEY_ID, AWS_SECRET, BUCKET, error_code, spawn_app, spawn_app_with, token,
};

fn assert_spec_valid(body: &Value) {
    let schema = whereby_stand_in::spec::request_schema("/meetings", "post").expect("schema");
    let errors = whereby_stand_in::spec::validate(schema, body);
    assert!(
        errors.is_empty(),
        "not valid per the official spec: {errors:?}"
    );
}

/// Checks `endDate` is about now + 8 h and returns the body without it.
fn without_end_date(mut body: Value) -> Value {
    let end: DateTime<Utc> = body["endDate"]
        .as_str()
        .expect("endDate")
        .parse()
        .expect("rfc3339");
    let hours = (end - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((7.9..=8.01).contains(&hours), "endDate is {hours} h away");
    body.as_object_mut().expect("object").remove("endDate");
    body
}

#[tokio::test]
async fn a_cloud_room_asks_whereby_for_s3_recording_exactly_as_the_spec_says() {
    let app = spawn_app().await;
    app.create_room(
        "alice",
        json!({"name": "standup", "recording_trigger": "automatic"}),
    )
    .await;
    let (status, meeting) = app.meeting("standup", "alice").await;
    assert_eq!(status, 201, "{meeting}");
    let bodies = app.whereby_create_bodies();
    assert_eq!(bodies.len(), 1);
    assert_spec_valid(&bodies[0]);
    assert_eq!(
        without_end_date(bodies[0].clone()),
        json!({
            "isLocked": false, "roomMode": "normal", "roomNamePrefix": "standup-",
            "roomNamePattern": "uuid", "fields": ["hostRoomUrl"],
            "recording": {"type": "cloud", "startTrigger": "automatic",
                "destination": {"provider": "s3", "bucket": BUCKET, "accessKeyId": AWS_KEY_ID,
                    "accessKeySecret": AWS_SECRET, "fileFormat": "mp4"}}
        })
    );
    let room_name = meeting["room_name"].as_str().expect("room_name");
    assert!(room_name.starts_with("/standup-"), "{room_name}");
    assert_eq!(
        meeting["room_url"],
        format!("https://acme.whereby.com{room_name}")
    );
    assert!(
        meeting["host_room_url"]
            .as_str()
            .expect("host url")
            .contains("roomKey=")
    );
    assert!(
        meeting["whereby_meeting_id"]
            .as_str()
            .expect("id")
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    assert_eq!(meeting["num_clients"], 0);
    assert_eq!(meeting["is_active"], true);
    assert_eq!(meeting["recording_trigger"], "automatic");
}

#[tokio::test]
async fn local_and_unrecorded_rooms_send_the_matching_recording_setting() {
    let app = spawn_app().await;
    app.create_room(
        "alice",
        json!({"name": "local-room", "recording_type": "local",
        "recording_trigger": "prompt", "is_locked": true, "room_mode": "group"}),
    )
    .await;
    app.create_room(
        "alice",
        json!({"name": "quiet-room", "recording_type": "none"}),
    )
    .await;
    assert_eq!(app.meeting("local-room", "alice").await.0, 201);
    assert_eq!(app.meeting("quiet-room", "alice").await.0, 201);
    let bodies = app.whereby_create_bodies();
    for body in &bodies {
        assert_spec_valid(body);
    }
    assert_eq!(
        without_end_date(bodies[0].clone()),
        json!({"isLocked": true, "roomMode": "group", "roomNamePrefix": "local-room-",
            "roomNamePattern": "uuid", "fields": ["hostRoomUrl"],
            "recording": {"type": "local", "destination": null, "startTrigger": "prompt"}})
    );
    assert_eq!(
        without_end_date(bodies[1].clone()),
        json!({"isLocked": false, "roomMode": "normal", "roomNamePrefix": "quiet-room-",
            "roomNamePattern": "uuid", "fields": ["hostRoomUrl"]})
    );
}

#[tokio::test]
async fn the_active_meeting_is_reused_while_the_settings_match() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup", "is_shared": true}))
        .await;
    let (s1, first) = app.meeting("standup", "alice").await;
    let (s2, second) = app.meeting("standup", "bob").await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.whereby_create_bodies().len(), 1);
    assert_eq!(app.meeting_rows().await, 1);
}

#[tokio::test]
async fn changing_the_room_settings_replaces_the_meeting() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "standup"})).await;
    let (_, first) = app.meeting("standup", "alice").await;
    let res = app
        .patch(
            &format!("/v1/rooms/{}", room["id"].as_str().expect("id")),
            "alice",
            &json!({"room_mode": "group"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let (status, second) = app.meeting("standup", "alice").await;
    assert_eq!(status, 201);
    assert_ne!(first["id"], second["id"]);
    assert_eq!(second["room_mode"], "group");
    let old: Value = app
        .get(
            &format!("/v1/meetings/{}", first["id"].as_str().expect("id")),
            "alice",
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(old["is_active"], false);
    let active: Value = app
        .get("/v1/rooms/standup/meetings/active", "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(active.as_array().expect("list").len(), 1);
    assert_eq!(active[0]["id"], second["id"]);
}

#[tokio::test]
async fn an_ended_meeting_is_not_reused() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    let (_, first) = app.meeting("standup", "alice").await;
    app.db
        .execute("UPDATE meetings SET end_date = now() - interval '1 minute', start_date = now() - interval '2 hours'")
        .await;
    let (status, second) = app.meeting("standup", "alice").await;
    assert_eq!(status, 201);
    assert_ne!(first["id"], second["id"]);
    let join = app
        .request(
            Method::POST,
            &format!(
                "/v1/rooms/standup/meetings/{}/join",
                first["id"].as_str().expect("id")
            ),
            Some(&token("alice")),
            None,
        )
        .await;
    assert_eq!(error_code(join, 409).await["code"], "meeting_ended");
}

#[tokio::test]
async fn concurrent_requests_for_one_room_make_one_whereby_meeting() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    // Slow Whereby down so that the requests really overlap.
    app.whereby.stand_in.push_fault(whereby_stand_in::Fault {
        delay_ms: Some(300),
        times: 1,
        ..Default::default()
    });
    let results =
        futures_util::future::join_all((0..8).map(|_| app.meeting("standup", "alice"))).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let reused = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, reused), (1, 7), "{results:?}");
    assert!(results.iter().all(|(_, m)| m["id"] == results[0].1["id"]));
    assert_eq!(app.whereby_create_bodies().len(), 1);
    assert_eq!(app.meeting_rows().await, 1);
}

#[tokio::test]
async fn the_host_url_is_shown_to_the_owner_only() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "shared", "is_shared": true}))
        .await;
    app.create_room("alice", json!({"name": "private"})).await;
    let (_, mine) = app.meeting("shared", "alice").await;
    let (_, theirs) = app.meeting("shared", "bob").await;
    assert!(mine["host_room_url"].is_string());
    assert!(theirs.get("host_room_url").is_none(), "{theirs}");
    let id = mine["id"].as_str().expect("id");
    let as_bob: Value = app
        .get(&format!("/v1/meetings/{id}"), "bob")
        .await
        .json()
        .await
        .expect("json");
    assert!(as_bob.get("host_room_url").is_none());
    let as_alice: Value = app
        .get(&format!("/v1/meetings/{id}"), "alice")
        .await
        .json()
        .await
        .expect("json");
    assert!(as_alice["host_room_url"].is_string());
    let active: Value = app
        .get("/v1/rooms/shared/meetings/active", "bob")
        .await
        .json()
        .await
        .expect("json");
    assert!(active[0].get("host_room_url").is_none());
    let join: Value = app
        .request(
            Method::POST,
            &format!("/v1/rooms/shared/meetings/{id}/join"),
            Some(&token("bob")),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(join.get("host_room_url").is_none());

    // A private room's meetings are invisible to others.
    let (_, private) = app.meeting("private", "alice").await;
    let pid = private["id"].as_str().expect("id");
    error_code(app.get(&format!("/v1/meetings/{pid}"), "bob").await, 404).await;
    assert_eq!(app.meeting("private", "bob").await.0, 404);
    error_code(
        app.get("/v1/rooms/private/meetings/active", "bob").await,
        404,
    )
    .await;
}

#[tokio::test]
async fn deactivating_ends_the_meeting_here_and_at_whereby() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "shared", "is_shared": true}))
        .await;
    let (_, meeting) = app.meeting("shared", "alice").await;
    let id = meeting["id"].as_str().expect("id");
    let path = format!("/v1/meetings/{id}/deactivate");
    let res = app
        .request(Method::PATCH, &path, Some(&token("bob")), None)
        .await;
    error_code(res, 403).await;

    let res = app
        .request(Method::PATCH, &path, Some(&token("alice")), None)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["is_active"], false);
    assert_eq!(app.whereby.stand_in.meeting_count(), 0);
    // Idempotent.
    let res = app
        .request(Method::PATCH, &path, Some(&token("alice")), None)
        .await;
    assert_eq!(res.status().as_u16(), 200);

    let join = app
        .request(
            Method::POST,
            &format!("/v1/rooms/shared/meetings/{id}/join"),
            Some(&token("alice")),
            None,
        )
        .await;
    assert_eq!(error_code(join, 409).await["code"], "meeting_inactive");
    let (status, next) = app.meeting("shared", "alice").await;
    assert_eq!(status, 201);
    assert_ne!(next["id"], meeting["id"]);
}

#[tokio::test]
async fn joining_checks_that_the_meeting_belongs_to_the_room() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "one"})).await;
    app.create_room("alice", json!({"name": "two"})).await;
    let (_, m1) = app.meeting("one", "alice").await;
    let id = m1["id"].as_str().expect("id");
    let ok = app
        .request(
            Method::POST,
            &format!("/v1/rooms/one/meetings/{id}/join"),
            Some(&token("alice")),
            None,
        )
        .await;
    assert_eq!(ok.status().as_u16(), 200);
    let wrong = app
        .request(
            Method::POST,
            &format!("/v1/rooms/two/meetings/{id}/join"),
            Some(&token("alice")),
            None,
        )
        .await;
    error_code(wrong, 404).await;
    assert_eq!(app.meeting("nope", "alice").await.0, 404);
}

#[tokio::test]
async fn operational_endpoints_report_state() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    app.meeting("standup", "alice").await;
    let res = app
        .http
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "req-test-123")
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["x-request-id"], "req-test-123");
    let generated = app.get("/v1/rooms", "alice").await;
    assert_eq!(generated.headers()["x-request-id"].len(), 36);

    let metrics = app
        .request(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            r#"roomapi_http_requests_total{method="POST",route="/v1/rooms",status="201"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"roomapi_whereby_api_calls_total{operation="create_meeting",outcome="ok"} 1"#
        )
    );
    assert!(metrics.contains("roomapi_whereby_api_call_duration_seconds_bucket"));
    assert!(metrics.contains("roomapi_active_meetings 1"), "{metrics}");
    assert!(metrics.contains("roomapi_whereby_plan_meeting_limit 25"));
    assert!(metrics.contains("roomapi_db_pool_connections{state=\"size\"}"));

    let doc: Value = app
        .request(Method::GET, "/v1/openapi.json", None, None)
        .await
        .json()
        .await
        .expect("json");
    for path in [
        "/v1/rooms",
        "/v1/rooms/{room}",
        "/v1/rooms/name/{name}",
        "/v1/rooms/{room}/meeting",
        "/v1/rooms/{room}/meetings/active",
        "/v1/rooms/{room}/meetings/{id}/join",
        "/v1/meetings/{id}",
        "/v1/meetings/{id}/deactivate",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["CreateRoom"].is_object());
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|ops| ops.as_object().into_iter().flat_map(|o| o.values()))
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds must be unique");

    let unknown = app.request(Method::GET, "/v2/nothing", None, None).await;
    assert_eq!(error_code(unknown, 404).await["code"], "not_found");
}

#[tokio::test]
async fn the_owner_sees_participants_and_sessions_others_do_not() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "shared", "is_shared": true}))
        .await;
    let (_, meeting) = app.meeting("shared", "alice").await;
    let id = meeting["id"].as_str().expect("id");
    // What recording-worker writes from Whereby's webhooks.
    app.db
        .execute(&format!(
            "INSERT INTO meeting_participants (meeting_id, participant_id, display_name, role_name, is_person, state, \
             state_as_of, state_event_id, first_joined_at) VALUES ('{id}', 'p1', 'Ada', 'host', true, 'joined', now(), 'e1', now())"
        ))
        .await;
    app.db
        .execute(&format!("INSERT INTO meeting_sessions (meeting_id, room_session_id, started_at) VALUES ('{id}', 's1', now())"))
        .await;
    app.db
        .execute(&format!(
            "UPDATE meetings SET num_clients = 1 WHERE id = '{id}'"
        ))
        .await;

    let participants: Value = app
        .get(&format!("/v1/meetings/{id}/participants"), "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(participants[0]["display_name"], "Ada");
    assert_eq!(participants[0]["state"], "joined");
    let sessions: Value = app
        .get(&format!("/v1/meetings/{id}/sessions"), "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(sessions[0]["room_session_id"], "s1");
    let m: Value = app
        .get(&format!("/v1/meetings/{id}"), "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(m["num_clients"], 1);

    for path in [
        format!("/v1/meetings/{id}/participants"),
        format!("/v1/meetings/{id}/sessions"),
    ] {
        error_code(app.get(&path, "bob").await, 403).await;
    }
    app.create_room("alice", json!({"name": "private"})).await;
    let (_, private) = app.meeting("private", "alice").await;
    let pid = private["id"].as_str().expect("id");
    error_code(
        app.get(&format!("/v1/meetings/{pid}/participants"), "bob")
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn an_unknown_plan_limit_is_not_exported_as_zero() {
    // A 0 would read as "no meetings allowed" and fire the capacity alert.
    let app = spawn_app_with(|s| s.meetings.whereby_plan_meeting_limit = None).await;
    let metrics = app
        .request(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("roomapi_active_meetings"), "{metrics}");
    assert!(
        !metrics.contains("roomapi_whereby_plan_meeting_limit"),
        "{metrics}"
    );
}
