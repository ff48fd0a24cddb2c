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
use recording_worker::{
    Application, WorkerSettings,
    jobs::Jobs,
    settings::{JobSettings, RecordingSettings, WorkerSection},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use settings::{AmqpSettings, DatabaseSettings, LogFormat, LogSettings, WherebySettings};
use test_support::TestBroker;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub fn settings(db_url: &str, broker: &TestBroker) -> WorkerSettings {
    let delays = broker
        .topology
        .settings
        .retry_delays
        .iter()
        .map(|d| d.as_millis().to_string())
        .collect::<Vec<_>>()
        .join(",");
    WorkerSettings {
        worker: WorkerSection {
            worker_addr: "127.0.0.1:0".to_owned(),
            worker_prefetch: 16,
            worker_batch_size: 8,
            worker_shutdown_seconds: 5,
            ..Default::default()
        },
        database: DatabaseSettings {
            database_url: SecretString::from(db_url.to_owned()),
            database_pool_size: 4,
            database_timeout_seconds: 2,
            database_migrate_on_start: false,
            ..Default::default()
        },
        amqp: AmqpSettings {
            amqp_retry_delays_ms: delays,
            ..broker.amqp_settings()
        },
        recordings: RecordingSettings {
            recording_storage_aws_bucket_name: None,
            aws_process_recording_queue_url: None,
            sqs_polling_timeout_seconds: 1,
            sqs_visibility_timeout_seconds: 2,
            recording_retention_days: None,
        },
        // Jobs are run by hand in the tests.
        jobs: JobSettings {
            job_scan_interval_seconds: 0,
            job_retention_interval_seconds: 0,
            job_meeting_cleanup_interval_seconds: 0,
            job_personal_data_interval_seconds: 0,
            meeting_empty_grace_seconds: 60,
            ..Default::default()
        },
        aws: test_support::aws::aws_settings(),
        whereby: WherebySettings {
            whereby_api_key: SecretString::from("worker-test-key".to_owned()),
            // Nothing listens here unless a test points it at a stand-in.
            whereby_api_url: "http://127.0.0.1:9/v1".to_owned(),
            whereby_timeout_seconds: 2,
            whereby_max_attempts: 1,
            whereby_max_retry_after_seconds: 1,
        },
        log: LogSettings {
            log_format: LogFormat::Pretty,
            log_level: "info".to_owned(),
        },
    }
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
        telemetry::init(false, "info");
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
