use std::{
    future::Future,
    net::TcpListener,
    sync::Arc,
    sync::atomic::AtomicU32,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use messaging::{
    HEADER_EVENT_TYPE, HEADER_REQUEST_ID, Publisher, SCHEMA_VERSION, Topology, WebhookEnvelope,
    lapin::{
        BasicProperties,
        types::{AMQPValue, FieldTable},
    },
    routing_key_for,
};
use recording_worker::{Application, WorkerSettings, jobs::Jobs};
use serde_json::{Value, json};
use test_support::{TestBroker, TestEnv};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn settings(db_url: &str, broker: &TestBroker) -> WorkerSettings {
    let env = TestEnv::new()
        .database_url(db_url)
        .set("DATABASE_TIMEOUT_SECONDS", "2")
        .broker(broker)
        .set("WORKER_PREFETCH", "16")
        .set("WORKER_BATCH_SIZE", "8")
        .set("WORKER_SHUTDOWN_SECONDS", "5")
        .set("SQS_POLLING_TIMEOUT_SECONDS", "1")
        .set("SQS_VISIBILITY_TIMEOUT_SECONDS", "2")
        // Jobs are run by hand in the tests.
        .set("JOB_SCAN_INTERVAL_SECONDS", "0")
        .set("JOB_RETENTION_INTERVAL_SECONDS", "0")
        .set("JOB_MEETING_CLEANUP_INTERVAL_SECONDS", "0")
        .set("JOB_PERSONAL_DATA_INTERVAL_SECONDS", "0")
        .set("MEETING_EMPTY_GRACE_SECONDS", "60")
        .set("WHEREBY_API_KEY", "worker-test-key")
        // Nothing listens here unless a test points it at a stand-in.
        .set("WHEREBY_API_URL", "http://127.0.0.1:9/v1")
        .set("WHEREBY_TIMEOUT_SECONDS", "2")
        .set("WHEREBY_MAX_ATTEMPTS", "1")
        .set("WHEREBY_MAX_RETRY_AFTER_SECONDS", "1");
    WorkerSettings::from_source(&env.source()).expect("recording-worker test settings")
}

/// The settings with S3/SQS pointed at a test bucket and queue.
pub fn with_aws(mut settings: WorkerSettings, aws: &test_support::TestAws) -> WorkerSettings {
    settings.recordings.recording_storage_aws_bucket_name = Some(aws.bucket.clone());
    settings.recordings.aws_process_recording_queue_url = Some(aws.queue_url.clone());
    settings
}

pub struct RunningWorker {
    pub port: u16,
    pub jobs: Jobs,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub crashes: Option<Arc<AtomicU32>>,
}

impl RunningWorker {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }

    pub async fn ready(&self) -> bool {
        reqwest::get(format!("http://127.0.0.1:{}/readyz", self.port))
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }
}

pub async fn spawn_worker(settings: WorkerSettings) -> RunningWorker {
    spawn_worker_with_crashes(settings, 0).await
}

pub async fn spawn_worker_with_crashes(settings: WorkerSettings, crashes: u32) -> RunningWorker {
    if std::env::var_os("TEST_LOG").is_some() {
        // The subscriber stays for the process; there is no exporter to flush.
        drop(telemetry::init("test", false, "info"));
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut app = Application::build_with_listener(settings, listener)
        .await
        .expect("build worker");
    let crashes = (crashes > 0).then(|| app.crash_after_commit(crashes));
    let port = app.port();
    let jobs = app.jobs();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    RunningWorker {
        port,
        jobs,
        shutdown,
        task,
        crashes,
    }
}

/// A room and a meeting with this Whereby meeting id; returns our meeting id.
pub async fn insert_meeting(db: &test_support::TestDatabase, whereby_meeting_id: &str) -> Uuid {
    let room = Uuid::new_v4();
    let meeting = Uuid::new_v4();
    db.execute(&format!(
        "INSERT INTO rooms (id, name, owner) VALUES ('{room}', 'r{}', 'alice')",
        &room.simple().to_string()[..12]
    ))
    .await;
    db.execute(&format!(
        "INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, \
         is_locked, room_mode, recording_type, recording_trigger, platform) VALUES ('{meeting}', '{room}', 'alice', \
         '{whereby_meeting_id}', '/r-x', 'https://a.whereby.com/r-x', now(), now() + interval '8 hours', false, \
         'normal', 'cloud', 'automatic', 'whereby')"
    ))
    .await;
    meeting
}

pub fn event(id: &str, kind: &str, created_at: DateTime<Utc>, data: Value) -> Value {
    json!({"id": id, "apiVersion": "1.0", "createdAt": created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "type": kind, "data": data})
}

pub fn client(
    meeting: &str,
    participant: &str,
    role: &str,
    num_clients: i64,
    by_role: Value,
) -> Value {
    json!({"meetingId": meeting, "roomName": "/r-x", "subdomain": "acme", "roomSessionId": "s-1",
           "participantId": participant, "displayName": format!("name of {participant}"), "roleName": role,
           "numClients": num_clients, "numClientsByRoleName": by_role, "isDialIn": false,
           "metadata": null, "externalId": null})
}

pub fn envelope_bytes(event: &Value) -> Vec<u8> {
    serde_json::to_vec(&WebhookEnvelope {
        schema_version: SCHEMA_VERSION,
        received_at: Utc::now(),
        request_id: Some("req-test".to_owned()),
        event: event.clone(),
    })
    .expect("envelope")
}

/// Publishes like webhook-ingest does.
pub async fn publish(publisher: &Publisher, topology: &Topology, event: &Value) {
    publish_raw(
        publisher,
        topology,
        event["type"].as_str().unwrap_or("x"),
        &envelope_bytes(event),
        event["id"].as_str().unwrap_or(""),
    )
    .await;
}

pub async fn publish_raw(
    publisher: &Publisher,
    topology: &Topology,
    event_type: &str,
    body: &[u8],
    id: &str,
) {
    let mut headers = FieldTable::default();
    headers.insert(
        HEADER_EVENT_TYPE.into(),
        AMQPValue::LongString(event_type.into()),
    );
    headers.insert(
        HEADER_REQUEST_ID.into(),
        AMQPValue::LongString("req-test".into()),
    );
    publisher
        .publish(
            &topology.events_exchange(),
            &routing_key_for(event_type),
            body,
            BasicProperties::default()
                .with_message_id(id.into())
                .with_headers(headers),
            Duration::from_secs(5),
        )
        .await
        .expect("publish");
}

pub async fn test_publisher(broker: &TestBroker) -> (Publisher, CancellationToken) {
    let publisher = Publisher::new(
        &broker.url,
        "test-publisher",
        broker.topology.clone(),
        Duration::from_secs(5),
        None,
    );
    let token = CancellationToken::new();
    publisher.spawn_supervisor(token.clone());
    wait_until(Duration::from_secs(10), || async {
        publisher.is_connected()
    })
    .await;
    (publisher, token)
}

pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < timeout,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rows of a query rendered as text, for comparing states.
pub async fn state(db_url: &str, meeting: Uuid) -> String {
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    let mut conn = AsyncPgConnection::establish(db_url).await.expect("connect");
    let participants = db::events::participants(&mut conn, meeting)
        .await
        .expect("participants");
    let sessions = db::events::sessions(&mut conn, meeting)
        .await
        .expect("sessions");
    let m = db::meetings::find(&mut conn, meeting)
        .await
        .expect("meeting")
        .expect("exists");
    format!(
        "{participants:?}\n{sessions:?}\nnum_clients={}",
        m.num_clients
    )
}

pub async fn inbox_count(db: &test_support::TestDatabase) -> usize {
    db.count("SELECT event_id FROM webhook_events").await
}
