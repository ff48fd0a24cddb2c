//! A participant joins and leaves a meeting through signed webhooks, end to end:
//! the Whereby stand-in sends them, webhook-ingest verifies and enqueues them,
//! recording-worker applies them, and room-api shows the result. Then every
//! webhook is delivered again, duplicated and shuffled, and nothing changes. The
//! cloud recording of the session is uploaded to the bucket (moto), announced on
//! SQS and by the recording.finished webhook, and handed to the pipeline once.

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use secrecy::SecretString;
use serde_json::{Value, json};
use settings::AuthSettings;
use test_support::{TestAws, TestBroker, TestDatabase, TestEnv};
use tokio_util::sync::CancellationToken;
use whereby_stand_in::{StandInConfig, StandInServer, webhooks::WebhookTarget};

const WEBHOOK_SECRET: &str = "e2e-webhook-secret";
const JWT_SECRET: &str = "e2e-jwt-secret-that-is-long-enough-012345";
const API_KEY: &str = "e2e-whereby-key";

/// What the three services share: the test's database and broker, Whereby's key.
fn shared_env(db: &TestDatabase, broker: &TestBroker) -> TestEnv {
    TestEnv::new()
        .database(db)
        .broker(broker)
        .set("WHEREBY_API_KEY", API_KEY)
        .set("WHEREBY_TIMEOUT_SECONDS", "5")
        .set("WHEREBY_MAX_ATTEMPTS", "2")
        .set("WHEREBY_MAX_RETRY_AFTER_SECONDS", "1")
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_joins_and_leaves_through_signed_webhooks() {
    if std::env::var_os("TEST_LOG").is_some() {
        // The subscriber stays for the process; there is no exporter to flush.
        drop(telemetry::init("test", false, "info"));
    }
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let shutdown = CancellationToken::new();

    // webhook-ingest
    let ingest = webhook_ingest::Application::build_with_listener(
        webhook_ingest::IngestSettings::from_source(
            &shared_env(&db, &broker)
                .set("WEBHOOK_INGEST_WORKERS", "1")
                .set("WEBHOOK_INGEST_SHUTDOWN_SECONDS", "1")
                .set("WEBHOOK_MAX_IN_FLIGHT", "64")
                .set("WHEREBY_WEBHOOK_SECRET", WEBHOOK_SECRET)
                .source(),
        )
        .expect("ingest settings"),
        TcpListener::bind("127.0.0.1:0").expect("bind"),
    )
    .await
    .expect("ingest");
    let ingest_url = format!("http://127.0.0.1:{}/v1/whereby", ingest.port());
    let publisher = ingest.publisher().clone();
    let ingest_token = CancellationToken::new();
    tokio::spawn(ingest.run(ingest_token.clone()));
    wait_for("ingest connected", Duration::from_secs(10), async || {
        publisher.is_connected()
    })
    .await;

    // recording-worker
    let worker = recording_worker::Application::build_with_listener(
        recording_worker::WorkerSettings::from_source(
            &shared_env(&db, &broker)
                .set("WORKER_PREFETCH", "8")
                .set("WORKER_BATCH_SIZE", "4")
                .set("WORKER_SHUTDOWN_SECONDS", "2")
                .set("RECORDING_STORAGE_AWS_BUCKET_NAME", aws.bucket.clone())
                .set("AWS_PROCESS_RECORDING_QUEUE_URL", aws.queue_url.clone())
                .set("SQS_POLLING_TIMEOUT_SECONDS", "1")
                .set("SQS_VISIBILITY_TIMEOUT_SECONDS", "5")
                .set("JOB_SCAN_INTERVAL_SECONDS", "0")
                .set("JOB_RETENTION_INTERVAL_SECONDS", "0")
                .set("JOB_MEETING_CLEANUP_INTERVAL_SECONDS", "0")
                .set("MEETING_EMPTY_GRACE_SECONDS", "600")
                .set("WHEREBY_API_URL", "http://127.0.0.1:9/v1")
                .source(),
        )
        .expect("worker settings"),
        TcpListener::bind("127.0.0.1:0").expect("bind"),
    )
    .await
    .expect("worker");
    let worker_task = tokio::spawn(worker.run(shutdown.clone()));

    // The Whereby stand-in, sending its webhooks to ingest.
    let whereby = StandInServer::spawn(StandInConfig {
        api_key: API_KEY.to_owned(),
        subdomain: "acme".to_owned(),
        webhooks: Some(WebhookTarget {
            url: ingest_url,
            secret: WEBHOOK_SECRET.to_owned(),
        }),
        s3_endpoint: Some(test_support::aws::endpoint()),
    })
    .expect("stand-in");

    // room-api
    let room_api = room_api::Application::build_with_listener(
        room_api::RoomApiSettings::from_source(
            &shared_env(&db, &broker)
                .set("ROOM_API_WORKERS", "1")
                .set("ROOM_API_SHUTDOWN_SECONDS", "1")
                .set("BRANDING_RETRY_SECONDS", "0")
                .set("WHEREBY_API_URL", whereby.api_url.clone())
                .set("RECORDING_STORAGE_AWS_BUCKET_NAME", aws.bucket.clone())
                .set("AWS_WHEREBY_ACCESS_KEY_ID", "test")
                .set("AWS_WHEREBY_ACCESS_KEY_SECRET", "test")
                .set("AUTH_JWT_SECRET", JWT_SECRET)
                .set("WHEREBY_PLAN_MEETING_LIMIT", "25")
                .set("RECORDING_DOWNLOAD_URL_SECONDS", "60")
                .source(),
        )
        .expect("room-api settings"),
        TcpListener::bind("127.0.0.1:0").expect("bind"),
    )
    .await
    .expect("room-api");
    let api = format!("http://127.0.0.1:{}", room_api.port());
    tokio::spawn(room_api.run(CancellationToken::new()));

    let http = reqwest::Client::new();
    let token = room_api::auth::dev_token(
        &AuthSettings::with_secret(SecretString::from(JWT_SECRET.to_owned())),
        "alice",
        1,
    )
    .expect("token");
    let res = http
        .post(format!("{api}/v1/rooms"))
        .bearer_auth(&token)
        .json(&json!({"name": "standup"}))
        .send()
        .await
        .expect("room");
    assert_eq!(res.status().as_u16(), 201);
    let meeting: Value = http
        .post(format!("{api}/v1/rooms/standup/meeting"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("meeting")
        .json()
        .await
        .expect("json");
    let id = meeting["id"].as_str().expect("id").to_owned();
    let whereby_id = meeting["whereby_meeting_id"]
        .as_str()
        .expect("whereby id")
        .to_owned();

    let control = format!("http://127.0.0.1:{}/_stand-in", whereby.port);
    let join = |name: &'static str| {
        let http = http.clone();
        let url = format!("{control}/meetings/{whereby_id}/join");
        async move {
            http.post(url)
                .json(&json!({"display_name": name}))
                .send()
                .await
                .expect("join")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let ada = join("Ada").await;
    let bob = join("Bob").await;
    for delivery in ada["deliveries"]
        .as_array()
        .into_iter()
        .chain(bob["deliveries"].as_array())
        .flatten()
    {
        assert_eq!(delivery["status"], 200, "{delivery}");
    }
    let left: Value = http
        .post(format!("{control}/meetings/{whereby_id}/leave"))
        .json(&json!({"participant_id": bob["participant_id"]}))
        .send()
        .await
        .expect("leave")
        .json()
        .await
        .expect("json");
    assert_eq!(
        left["deliveries"].as_array().map(Vec::len),
        Some(3),
        "left, session ended, recording finished: {left}"
    );
    assert!(left["recording_key"].is_string(), "{left}");

    let get = async |path: &str| -> Value {
        http.get(format!("{api}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    };
    wait_for("sessions applied", Duration::from_secs(15), async || {
        get(&format!("/v1/meetings/{id}/sessions")).await[0]["ended_at"].is_string()
    })
    .await;
    let check = async || {
        let meeting = get(&format!("/v1/meetings/{id}")).await;
        assert_eq!(meeting["num_clients"], 1, "{meeting}");
        let participants = get(&format!("/v1/meetings/{id}/participants")).await;
        let states: Vec<(String, String)> = participants
            .as_array()
            .expect("list")
            .iter()
            .map(|p| {
                (
                    p["display_name"].as_str().unwrap_or("").to_owned(),
                    p["state"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                ("Ada".to_owned(), "joined".to_owned()),
                ("Bob".to_owned(), "left".to_owned())
            ]
        );
        let sessions = get(&format!("/v1/meetings/{id}/sessions")).await;
        assert_eq!(sessions.as_array().map(Vec::len), Some(1));
        let recordings = get(&format!("/v1/meetings/{id}/recordings")).await;
        assert_eq!(recordings.as_array().map(Vec::len), Some(1), "{recordings}");
        assert_eq!(recordings[0]["status"], "queued", "{recordings}");
        assert!(
            recordings[0]["whereby_recording_id"].is_string(),
            "{recordings}"
        );
    };
    // The upload's S3 notification and the recording.finished webhook both arrive.
    wait_for(
        "recording handed off",
        Duration::from_secs(30),
        async || {
            let r = get(&format!("/v1/meetings/{id}/recordings")).await;
            r[0]["status"] == "queued" && r[0]["whereby_recording_id"].is_string()
        },
    )
    .await;
    check().await;
    assert_eq!(db.count("SELECT 1 FROM webhook_events").await, 6);
    assert_eq!(
        broker.ready_count(&broker.topology.pipeline_queue()).await,
        1,
        "one recording.ready for the pipeline"
    );

    // Whereby delivering everything again, twice and out of order: nothing changes.
    let replay: Value = http
        .post(format!("{control}/webhooks/replay"))
        .json(&json!({"duplicates": true, "shuffle": true}))
        .send()
        .await
        .expect("replay")
        .json()
        .await
        .expect("json");
    assert_eq!(replay["deliveries"].as_array().map(Vec::len), Some(12));
    wait_for("replays consumed", Duration::from_secs(15), async || {
        broker.ready_count(&broker.topology.worker_queue()).await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    check().await;
    assert_eq!(db.count("SELECT 1 FROM webhook_events").await, 6);
    assert_eq!(db.count("SELECT 1 FROM recordings").await, 1);
    assert_eq!(
        broker.ready_count(&broker.topology.pipeline_queue()).await,
        1
    );

    shutdown.cancel();
    ingest_token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), worker_task).await;
}
