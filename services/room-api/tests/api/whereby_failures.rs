//! How room-api behaves when Whereby fails: the right status for our caller, the
//! right retries, and never a meeting row for a meeting we did not get.

use serde_json::json;
use whereby_stand_in::Fault;

use crate::helpers::{AWS_SECRET, WHEREBY_KEY, error_code, spawn_app, spawn_app_with};

fn fault(status: u16, times: u32) -> Fault {
    Fault {
        status: Some(status),
        times,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_wrong_api_key_is_a_502_without_retries_and_leaves_no_row() {
    let app = spawn_app_with(|s| {
        s.whereby.whereby_api_key = secrecy::SecretString::from("wrong-key".to_owned());
    })
    .await;
    app.create_room("alice", json!({"name": "standup"})).await;
    let (status, body) = app.meeting("standup", "alice").await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "whereby_refused");
    assert_eq!(app.meeting_rows().await, 0);
    assert!(!body.to_string().contains("wrong-key"));
}

#[tokio::test]
async fn a_429_is_waited_out_then_the_meeting_is_created() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    app.whereby.stand_in.push_fault(Fault {
        status: Some(429),
        retry_after: Some(1),
        times: 1,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let (status, _) = app.meeting("standup", "alice").await;
    assert_eq!(status, 201);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(950),
        "Retry-After not honoured"
    );
    assert_eq!(app.whereby_create_bodies().len(), 2);
    assert_eq!(app.meeting_rows().await, 1);
}

#[tokio::test]
async fn a_long_retry_after_gives_503_at_once_and_no_row() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    app.whereby.stand_in.push_fault(Fault {
        status: Some(429),
        retry_after: Some(60),
        times: 1,
        ..Default::default()
    });
    let (status, body) = app.meeting("standup", "alice").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "whereby_throttled");
    assert_eq!(app.whereby_create_bodies().len(), 1);
    assert_eq!(app.meeting_rows().await, 0);
}

#[tokio::test]
async fn a_passing_5xx_is_retried_with_backoff() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    app.whereby.stand_in.push_fault(fault(503, 2));
    let (status, _) = app.meeting("standup", "alice").await;
    assert_eq!(status, 201);
    assert_eq!(app.whereby_create_bodies().len(), 3);
    assert_eq!(app.meeting_rows().await, 1);
}

#[tokio::test]
async fn a_lasting_5xx_is_a_502_after_bounded_attempts_and_leaves_no_row() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    app.whereby.stand_in.push_fault(fault(500, 10));
    let (status, body) = app.meeting("standup", "alice").await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "whereby_unavailable");
    assert_eq!(app.whereby_create_bodies().len(), 3);
    assert_eq!(app.meeting_rows().await, 0);
    let text = body.to_string();
    assert!(!text.contains(WHEREBY_KEY) && !text.contains(AWS_SECRET));
}

#[tokio::test]
async fn a_4xx_from_whereby_is_not_retried_and_keeps_whereby_status_and_message() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    app.whereby.stand_in.push_fault(fault(400, 1));
    let (status, body) = app.meeting("standup", "alice").await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "whereby_rejected");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("400") && message.contains("injected fault"),
        "{message}"
    );
    assert_eq!(app.whereby_create_bodies().len(), 1);
    assert_eq!(app.meeting_rows().await, 0);
}

#[tokio::test]
async fn a_whereby_that_never_answers_times_out_into_a_502_and_no_row() {
    let app = spawn_app_with(|s| {
        s.whereby.whereby_timeout_seconds = 1;
        s.whereby.whereby_max_attempts = 2;
    })
    .await;
    app.create_room("alice", json!({"name": "standup"})).await;
    app.whereby.stand_in.push_fault(Fault {
        delay_ms: Some(2500),
        status: Some(500),
        times: 2,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let (status, body) = app.meeting("standup", "alice").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "whereby_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(app.meeting_rows().await, 0);
}

#[tokio::test]
async fn a_failed_deactivation_at_whereby_changes_nothing() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    let (_, meeting) = app.meeting("standup", "alice").await;
    app.whereby.stand_in.push_fault(fault(500, 10));
    let res = app
        .request(
            reqwest::Method::PATCH,
            &format!(
                "/v1/meetings/{}/deactivate",
                meeting["id"].as_str().expect("id")
            ),
            Some(&crate::helpers::token("alice")),
            None,
        )
        .await;
    error_code(res, 502).await;
    assert_eq!(
        app.db
            .count("SELECT id FROM meetings WHERE is_active")
            .await,
        1
    );
}

#[tokio::test]
async fn a_database_outage_is_a_503_not_a_500() {
    let app = spawn_app_with(|s| {
        s.database.database_url =
            secrecy::SecretString::from("postgres://postgres@127.0.0.1:1/nowhere".to_owned());
        s.database.database_timeout_seconds = 1;
    })
    .await;
    let res = app
        .post("/v1/rooms", "alice", &json!({"name": "standup"}))
        .await;
    assert_eq!(error_code(res, 503).await["code"], "database_unavailable");
    let ready = app
        .request(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(ready.status().as_u16(), 503);
}
