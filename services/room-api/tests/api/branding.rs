//! Branded rooms: what reaches Whereby's theme API for a new meeting (checked by
//! the stand-in against the spec), a theme call that fails never fails the
//! meeting and is retried, images checked by content and size, owner only.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use whereby_stand_in::Fault;

use crate::helpers::{TestApp, spawn_app, token};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRnot-a-real-image";

async fn upload(app: &TestApp, user: &str, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
    app.http
        .put(format!("{}{path}", app.address))
        .bearer_auth(token(user))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload")
        .status()
        .as_u16()
}

async fn set_branding(app: &TestApp, user: &str, rid: &str, body: Value) -> reqwest::Response {
    app.request(
        Method::PUT,
        &format!("/v1/rooms/{rid}/branding"),
        Some(&token(user)),
        Some(&body),
    )
    .await
}

fn theme_requests(app: &TestApp, room_name: &str) -> Vec<(String, Option<Value>)> {
    let segment = room_name.trim_start_matches('/');
    app.whereby
        .stand_in
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(&format!("/v1/rooms/{segment}/theme/")))
        .map(|r| (r.path.rsplit('/').next().unwrap_or("").to_owned(), r.body))
        .collect()
}

#[tokio::test]
async fn a_new_meeting_gets_its_rooms_colours_logo_and_background() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "branded"})).await;
    let rid = room["id"].as_str().expect("id");
    let res = app
        .request(
            Method::PUT,
            &format!("/v1/rooms/{rid}/branding"),
            Some(&token("alice")),
            Some(
                &json!({"colors": {"primary": "#112233", "focus": "#ABCDEF"},
                         "background_preset": {"palette": "grey", "theme": "mountains"}}),
            ),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        upload(
            &app,
            "alice",
            &format!("/v1/rooms/{rid}/branding/logo"),
            "image/png",
            PNG.to_vec()
        )
        .await,
        204
    );
    let (status, meeting) = app.meeting("branded", "alice").await;
    assert_eq!(status, 201, "{meeting}");
    assert_eq!(meeting["branding"]["state"], "applied", "{meeting}");
    let room_name = meeting["room_name"].as_str().expect("room name");
    assert_eq!(
        theme_requests(&app, room_name),
        [
            (
                "tokens".to_owned(),
                Some(
                    json!({"tokens": {"colors": {"primary": "#112233", "focus": "#abcdef"}}, "tokensPreset": "custom"})
                )
            ),
            (
                "logo".to_owned(),
                Some(
                    json!({"multipart": [{"name": "image", "content_type": "image/png", "bytes": PNG.len()}]})
                )
            ),
            (
                "room-background".to_owned(),
                Some(json!({"palette": "grey", "theme": "mountains"}))
            ),
        ]
    );
    // Reading it back.
    let view: Value = app
        .get(&format!("/v1/rooms/{rid}/branding"), "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["logo"]["bytes"], PNG.len());
    let logo = app
        .get(&format!("/v1/rooms/{rid}/branding/logo"), "alice")
        .await;
    assert_eq!(logo.bytes().await.expect("bytes").as_ref(), PNG);
}

#[tokio::test]
async fn a_failing_theme_call_leaves_the_meeting_created_and_is_retried() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "flaky"})).await;
    let rid = room["id"].as_str().expect("id");
    set_branding(
        &app,
        "alice",
        rid,
        json!({"colors": {"primary": "#010203"}}),
    )
    .await;
    // The meeting is created; then every attempt of the theme call fails.
    app.whereby.stand_in.push_fault(Fault {
        times: 1,
        ..Default::default()
    });
    app.whereby.stand_in.push_fault(Fault {
        status: Some(503),
        times: 3,
        ..Default::default()
    });
    let (status, meeting) = app.meeting("flaky", "alice").await;
    assert_eq!(status, 201, "{meeting}");
    assert_eq!(meeting["branding"]["state"], "pending", "{meeting}");
    assert!(meeting["branding"]["reason"].is_string(), "{meeting}");
    // The retry loop (every second in the tests) applies it.
    let id = meeting["id"].as_str().expect("id");
    let started = Instant::now();
    loop {
        let m: Value = app
            .get(&format!("/v1/meetings/{id}"), "alice")
            .await
            .json()
            .await
            .expect("json");
        if m["branding"]["state"] == "applied" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not retried: {m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.meeting_rows().await, 1);
}

#[tokio::test]
async fn bad_images_are_refused_and_only_the_owner_may_brand() {
    let app = spawn_app().await;
    let room = app
        .create_room("alice", json!({"name": "strict", "is_shared": true}))
        .await;
    let rid = room["id"].as_str().expect("id");
    let logo = format!("/v1/rooms/{rid}/branding/logo");
    // Declared PNG, but a GIF by content.
    assert_eq!(
        upload(&app, "alice", &logo, "image/png", b"GIF89a....".to_vec()).await,
        422
    );
    // Not an image type at all.
    assert_eq!(
        upload(&app, "alice", &logo, "text/plain", PNG.to_vec()).await,
        415
    );
    // Too large.
    let mut huge = PNG.to_vec();
    huge.resize(700 * 1024, 0);
    assert_eq!(upload(&app, "alice", &logo, "image/png", huge).await, 413);
    // Not the owner (the room is shared, so bob sees it).
    assert_eq!(
        upload(&app, "bob", &logo, "image/png", PNG.to_vec()).await,
        403
    );
    let bad_colour = set_branding(&app, "alice", rid, json!({"colors": {"primary": "red"}})).await;
    assert_eq!(bad_colour.status().as_u16(), 422);
    // Nothing was stored.
    assert_eq!(app.db.count("SELECT 1 FROM room_branding").await, 0);
    assert_eq!(app.get(&logo, "alice").await.status().as_u16(), 404);
}

#[tokio::test]
async fn changing_the_branding_reaches_the_active_meeting() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "later"})).await;
    let rid = room["id"].as_str().expect("id");
    let (_, meeting) = app.meeting("later", "alice").await;
    assert!(
        meeting.get("branding").is_none(),
        "nothing to apply yet: {meeting}"
    );
    let room_name = meeting["room_name"].as_str().expect("room name").to_owned();
    set_branding(
        &app,
        "alice",
        rid,
        json!({"colors": {"secondary": "#0a0b0c"}}),
    )
    .await;
    let started = Instant::now();
    while theme_requests(&app, &room_name).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        theme_requests(&app, &room_name)[0].1,
        Some(json!({"tokens": {"colors": {"secondary": "#0a0b0c"}}, "tokensPreset": "custom"}))
    );
}

#[tokio::test]
async fn rooms_without_their_own_branding_get_the_organisations() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.meetings.branding_default_primary_color = Some("#123456".to_owned());
        s.meetings.branding_default_background = Some("purple/rocks".to_owned());
    })
    .await;
    app.create_room("alice", json!({"name": "plain"})).await;
    let (status, meeting) = app.meeting("plain", "alice").await;
    assert_eq!(status, 201);
    assert_eq!(meeting["branding"]["state"], "applied", "{meeting}");
    let room_name = meeting["room_name"].as_str().expect("room name");
    assert_eq!(
        theme_requests(&app, room_name),
        [
            (
                "tokens".to_owned(),
                Some(
                    json!({"tokens": {"colors": {"primary": "#123456"}}, "tokensPreset": "custom"})
                )
            ),
            (
                "room-background".to_owned(),
                Some(json!({"palette": "purple", "theme": "rocks"}))
            ),
        ]
    );
}

#[tokio::test]
async fn a_throttled_theme_call_leaves_the_meeting_created_with_branding_pending() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "throttled"})).await;
    let rid = room["id"].as_str().expect("id");
    set_branding(
        &app,
        "alice",
        rid,
        json!({"colors": {"primary": "#010203"}}),
    )
    .await;
    // The meeting is created; the theme call is throttled for longer than the
    // client waits out (a 429 with a long Retry-After).
    app.whereby.stand_in.push_fault(Fault {
        times: 1,
        ..Default::default()
    });
    app.whereby.stand_in.push_fault(Fault {
        status: Some(429),
        retry_after: Some(60),
        times: 1,
        ..Default::default()
    });
    let (status, meeting) = app.meeting("throttled", "alice").await;
    assert_eq!(status, 201, "{meeting}");
    assert_eq!(meeting["branding"]["state"], "pending", "{meeting}");
    assert_eq!(app.meeting_rows().await, 1);
    assert_eq!(app.whereby.stand_in.meeting_count(), 1);
}

#[tokio::test]
async fn branding_that_never_lands_ends_failed_with_its_reason_and_is_counted() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "doomed"})).await;
    let rid = room["id"].as_str().expect("id");
    set_branding(
        &app,
        "alice",
        rid,
        json!({"colors": {"primary": "#010203"}}),
    )
    .await;
    // The meeting is created; every theme call after it fails (3 client attempts
    // per try, 5 tries).
    app.whereby.stand_in.push_fault(Fault {
        times: 1,
        ..Default::default()
    });
    app.whereby.stand_in.push_fault(Fault {
        status: Some(503),
        times: 100,
        ..Default::default()
    });
    let (status, meeting) = app.meeting("doomed", "alice").await;
    assert_eq!(status, 201, "{meeting}");
    let id = meeting["id"].as_str().expect("id");
    let started = Instant::now();
    let last = loop {
        let m: Value = app
            .get(&format!("/v1/meetings/{id}"), "alice")
            .await
            .json()
            .await
            .expect("json");
        if m["branding"]["state"] == "failed" {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never failed: {m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(last["branding"]["reason"].is_string(), "{last}");
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT 1 FROM meetings WHERE id = '{id}' AND branding_attempts = 5"
            ))
            .await,
        1
    );
    // No more tries once failed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT 1 FROM meetings WHERE id = '{id}' AND branding_attempts = 5"
            ))
            .await,
        1
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("roomapi_branding_attempts_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );
}
