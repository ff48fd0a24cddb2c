//! room-api when the database or the caller misbehaves: failover's read-only
//! seconds are 503 (retryable), never 500; a slow Whereby holds no pooled
//! connection; a client that walks away midway leaves no orphan at Whereby.

use std::time::{Duration, Instant};

use serde_json::json;
use whereby_stand_in::Fault;

use crate::helpers::{error_code, spawn_app, spawn_app_with, token};

#[tokio::test]
async fn a_read_only_database_is_503_not_500() {
    // No background loop: every connection of the pool is opened after the
    // database turned read-only (new sessions take the database's default).
    let app = spawn_app_with(|s| s.http.branding_retry_seconds = 0).await;
    app.db
        .execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            app.db.name
        ))
        .await;
    let res = app.post("/v1/rooms", "alice", &json!({"name": "ro"})).await;
    let error = error_code(res, 503).await;
    assert_eq!(error["code"], "database_unavailable");
    // (The database is dropped with the test; nothing to undo.)
}

#[tokio::test]
async fn a_slow_whereby_holds_no_pooled_connection() {
    // One pooled connection: were it held across the Whereby call, every other
    // request would wait for it.
    let app = spawn_app_with(|s| s.database.database_pool_size = 1).await;
    app.create_room("alice", json!({"name": "slow"})).await;
    app.whereby.stand_in.push_fault(Fault {
        delay_ms: Some(2000),
        times: 1,
        ..Default::default()
    });
    let creating = {
        let http = app.http.clone();
        let url = format!("{}/v1/rooms/slow/meeting", app.address);
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token("alice"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let res = app.get("/v1/rooms", "alice").await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "a read waited {:?} for the connection the Whereby call held",
        started.elapsed()
    );
    assert_eq!(creating.await.expect("join").expect("answered"), 201);
}

#[tokio::test]
async fn a_client_that_disconnects_midway_leaves_no_orphan_meeting() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "gone"})).await;
    app.whereby.stand_in.push_fault(Fault {
        delay_ms: Some(1000),
        times: 1,
        ..Default::default()
    });
    // The client gives up while Whereby is still creating the meeting.
    let gave_up = app
        .http
        .post(format!("{}/v1/rooms/gone/meeting", app.address))
        .bearer_auth(token("alice"))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(gave_up.is_err());
    // The creation goes on without it and stores the meeting.
    let started = Instant::now();
    while app.meeting_rows().await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the meeting Whereby created was not stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.whereby.stand_in.meeting_count(), 1);
    // The next request reuses it: still one meeting at Whereby.
    let (status, meeting) = app.meeting("gone", "alice").await;
    assert_eq!(status, 200, "{meeting}");
    assert_eq!(app.whereby_create_bodies().len(), 1);
    assert_eq!(app.whereby.stand_in.meeting_count(), 1);
}

#[tokio::test]
async fn a_request_past_its_deadline_is_503_and_the_creation_still_lands() {
    let app = spawn_app_with(|s| s.http.room_api_request_timeout_seconds = 1).await;
    app.create_room("alice", json!({"name": "late"})).await;
    app.whereby.stand_in.push_fault(Fault {
        delay_ms: Some(2500),
        times: 1,
        ..Default::default()
    });
    let res = app
        .http
        .post(format!("{}/v1/rooms/late/meeting", app.address))
        .bearer_auth(token("alice"))
        .send()
        .await
        .expect("answered");
    let error = error_code(res, 503).await;
    assert_eq!(error["code"], "timeout");
    // The creation went on without the request and is stored, not orphaned.
    let started = Instant::now();
    while app.meeting_rows().await == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "not stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.whereby.stand_in.meeting_count(), 1);
}

#[tokio::test]
async fn on_a_schema_older_than_its_code_room_api_is_not_ready_and_names_the_migration() {
    let app = spawn_app().await;
    let versions = db::migrate::embedded_versions();
    let latest = versions.last().expect("a migration");
    // A release rolled out before its migration Job ran (DATABASE_MIGRATE_ON_START
    // is false here, as in the manifests).
    app.db
        .execute(&format!(
            "DELETE FROM __diesel_schema_migrations WHERE version = '{latest}'"
        ))
        .await;
    let (code, body) = app.readyz().await;
    assert_eq!(code, 503, "{body}");
    let schema = body["checks"]["schema"].as_str().unwrap_or_default();
    assert!(
        schema.starts_with("down: migration ") && schema.contains(latest.as_str()),
        "{schema}"
    );
    assert_eq!(body["checks"]["database"], "up");

    app.db
        .execute(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{latest}')"
        ))
        .await;
    let (code, body) = app.readyz().await;
    assert_eq!(
        (code, &body["checks"]["schema"]),
        (200, &json!("up")),
        "{body}"
    );
}
