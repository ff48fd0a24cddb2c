//! `whereby-ops` run as a process against the local stack: real Postgres,
//! RabbitMQ, the S3/SQS emulator, the Whereby stand-in, and in-process services.

use std::{collections::HashMap, net::TcpListener, process::Command, time::Duration};

use serde_json::Value;
use test_support::{TestAws, TestBroker, TestDatabase, TestEnv};
use tokio_util::sync::CancellationToken;
use whereby_stand_in::{StandInConfig, StandInServer};

const KEY: &str = "ops-test-whereby-key";
const SECRET: &str = "ops-test-webhook-secret";

struct Stack {
    db: TestDatabase,
    broker: TestBroker,
    aws: TestAws,
    whereby: StandInServer,
}

impl Stack {
    async fn new() -> Self {
        let whereby = StandInServer::spawn(StandInConfig {
            api_key: KEY.to_owned(),
            ..StandInConfig::default()
        })
        .expect("stand-in");
        Self {
            db: TestDatabase::new().await,
            broker: TestBroker::new().await,
            aws: TestAws::new().await,
            whereby,
        }
    }

    fn env(&self) -> HashMap<String, String> {
        [
            ("DATABASE_URL", self.db.url.clone()),
            ("AMQP_URL", self.broker.url.clone()),
            ("AMQP_PREFIX", self.broker.prefix().to_owned()),
            ("WHEREBY_API_KEY", KEY.to_owned()),
            ("WHEREBY_API_URL", self.whereby.api_url.clone()),
            ("WHEREBY_WEBHOOK_SECRET", SECRET.to_owned()),
            ("RECORDING_STORAGE_AWS_BUCKET_NAME", self.aws.bucket.clone()),
            ("AWS_WHEREBY_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_WHEREBY_ACCESS_KEY_SECRET", "test".to_owned()),
            (
                "AWS_PROCESS_RECORDING_QUEUE_URL",
                self.aws.queue_url.clone(),
            ),
            ("AWS_ENDPOINT_URL", test_support::aws::endpoint()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            (
                "AUTH_JWT_SECRET",
                "ops-test-jwt-secret-long-enough-0123456789".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// Runs the CLI with exactly `env`; returns the exit code and stdout.
async fn ops(env: HashMap<String, String>, args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_whereby-ops"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run whereby-ops");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
    .await
    .expect("join")
}

fn checks(out: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_a_healthy_stack_and_names_each_problem_otherwise() {
    let stack = Stack::new().await;
    let (code, out) = ops(stack.env(), &["doctor", "--json"]).await;
    let all = checks(&out);
    assert_eq!(code, 0, "{out}");
    assert!(all.iter().all(|(_, s)| s == "ok"), "{all:?}");
    for name in [
        "whereby api",
        "postgres",
        "rabbitmq",
        "s3 (whereby's key)",
        "s3 (privacy)",
        "sqs",
    ] {
        assert!(
            all.iter().any(|(n, _)| n == name),
            "{name} checked: {all:?}"
        );
    }
    // A bucket without public-access block, encryption or lifecycle, while
    // retention is set: each problem named, with a hint.
    let mut bare = stack.env();
    bare.insert(
        "RECORDING_STORAGE_AWS_BUCKET_NAME".into(),
        stack.aws.bare_bucket().await,
    );
    bare.insert("RECORDING_RETENTION_DAYS".into(), "30".into());
    let (code, out) = ops(bare, &["doctor", "--json"]).await;
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let privacy = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "s3 (privacy)")
        .cloned()
        .expect("the privacy check");
    assert_eq!(privacy["status"], "fail");
    let detail = privacy["detail"].as_str().unwrap_or_default();
    for problem in [
        "public access is not blocked",
        "no default encryption",
        "no lifecycle rule",
        "versioning ",
    ] {
        assert!(detail.contains(problem), "{problem}: {detail}");
    }
    assert!(
        privacy["hint"]
            .as_str()
            .is_some_and(|h| h.contains("Block Public Access"))
    );

    let mut broken = stack.env();
    broken.insert("WHEREBY_API_KEY".into(), "wrong".into());
    broken.remove("WHEREBY_WEBHOOK_SECRET");
    let empty = TestDatabase::empty().await;
    broken.insert("DATABASE_URL".into(), empty.url.clone());
    broken.insert("AMQP_PREFIX".into(), "nothing-declared-here.".into());
    let (code, out) = ops(broken, &["doctor", "--json"]).await;
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("json");
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect();
    for expected in [
        "setting WHEREBY_WEBHOOK_SECRET",
        "whereby api",
        "postgres",
        "queue nothing-declared-here.whereby.events.worker",
    ] {
        assert!(
            failed.contains(&expected),
            "{expected} should fail: {failed:?}"
        );
    }
    assert!(
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["status"] == "fail")
            .all(|c| c["hint"].is_string())
    );
    assert!(
        !out.contains(KEY) && !out.contains("ops-test-jwt-secret"),
        "no secrets in the output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_applies_the_schema() {
    let stack = Stack::new().await;
    let empty = TestDatabase::empty().await;
    let mut env = stack.env();
    env.insert("DATABASE_URL".into(), empty.url.clone());
    let (code, out) = ops(env.clone(), &["migrate"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("applied"), "{out}");
    let (code, out) = ops(env, &["migrate"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("current"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_reaches_webhook_ingest_and_explains_a_wrong_secret() {
    let stack = Stack::new().await;
    let settings = webhook_ingest::IngestSettings::from_source(
        &TestEnv::new()
            .broker(&stack.broker)
            .set("WEBHOOK_INGEST_WORKERS", "1")
            .set("WEBHOOK_INGEST_SHUTDOWN_SECONDS", "1")
            .set("WEBHOOK_MAX_IN_FLIGHT", "16")
            .set("WHEREBY_WEBHOOK_SECRET", SECRET)
            .source(),
    )
    .expect("ingest settings");
    let app = webhook_ingest::Application::build_with_listener(
        settings,
        TcpListener::bind("127.0.0.1:0").expect("bind"),
    )
    .await
    .expect("ingest");
    let url = format!("http://127.0.0.1:{}/v1/whereby", app.port());
    let publisher = app.publisher().clone();
    let token = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.run(token.clone()));
    for _ in 0..100 {
        if publisher.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out) = ops(stack.env(), &["webhook", "send-test", "--url", &url]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        stack
            .broker
            .ready_count(&stack.broker.topology.worker_queue())
            .await,
        1
    );
    // The secret is never taken from the command line.
    let (code, out) = ops(
        stack.env(),
        &["webhook", "send-test", "--url", &url, "--secret", "not-it"],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    let mut wrong = stack.env();
    wrong.insert("WHEREBY_WEBHOOK_SECRET".to_owned(), "not-it".to_owned());
    let (code, out) = ops(wrong, &["webhook", "send-test", "--url", &url]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("401") && out.contains("WHEREBY_WEBHOOK_SECRET differs"),
        "{out}"
    );
    token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_shows_why_and_replay_puts_messages_back() {
    let stack = Stack::new().await;
    let (conn, channel) = stack.broker.channel().await;
    // Dead-letter a message the way the worker does: reject it without requeue.
    let topology = &stack.broker.topology;
    channel
        .basic_publish(
            topology.events_exchange().as_str().into(),
            "whereby.room.client.joined".into(),
            Default::default(),
            br#"{"schema_version":1,"received_at":"2030-01-01T00:00:00Z","event":{"id":"dead-1"}}"#,
            messaging::lapin::BasicProperties::default().with_message_id("dead-1".into()),
        )
        .await
        .expect("publish");
    let got = loop {
        if let Some(m) = channel
            .basic_get(topology.worker_queue().as_str().into(), Default::default())
            .await
            .expect("get")
        {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    got.delivery
        .reject(messaging::lapin::options::BasicRejectOptions { requeue: false })
        .await
        .expect("reject");
    for _ in 0..100 {
        if stack
            .broker
            .ready_count(&topology.dead_letter_queue())
            .await
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = conn.close(200, "bye".into()).await;

    let (code, out) = ops(stack.env(), &["dlq", "list", "--json"]).await;
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["items"][0]["message_id"], "dead-1");
    assert_eq!(v["items"][0]["reason"], "rejected");
    assert_eq!(
        stack
            .broker
            .ready_count(&topology.dead_letter_queue())
            .await,
        1,
        "listing leaves messages in place"
    );

    let (code, out) = ops(stack.env(), &["dlq", "replay"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 message(s) sent back"), "{out}");
    assert_eq!(
        stack
            .broker
            .ready_count(&topology.dead_letter_queue())
            .await,
        0
    );
    assert_eq!(stack.broker.ready_count(&topology.worker_queue()).await, 1);

    // It fails again (rejected as the worker would): the next replay stops at it
    // and leaves it in the dead-letter queue.
    let (conn, channel) = stack.broker.channel().await;
    let again = channel
        .basic_get(topology.worker_queue().as_str().into(), Default::default())
        .await
        .expect("get")
        .expect("the replayed message");
    again
        .delivery
        .reject(messaging::lapin::options::BasicRejectOptions { requeue: false })
        .await
        .expect("reject");
    for _ in 0..100 {
        if stack
            .broker
            .ready_count(&topology.dead_letter_queue())
            .await
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = conn.close(200, "bye".into()).await;
    let (code, out) = ops(stack.env(), &["dlq", "replay"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("dead-lettered again"), "{out}");
    assert_eq!(
        stack
            .broker
            .ready_count(&topology.dead_letter_queue())
            .await,
        1
    );
    assert_eq!(stack.broker.ready_count(&topology.worker_queue()).await, 0);
    let (code, out) = ops(stack.env(), &["dlq", "replay", "--again"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(stack.broker.ready_count(&topology.worker_queue()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescan_runs_the_workers_catch_up_scan() {
    let stack = Stack::new().await;
    stack
        .aws
        .put("lost-2030-01-01T09:05:30Z.mp4", b"video")
        .await;
    let mut env = stack.env();
    env.remove("AWS_PROCESS_RECORDING_QUEUE_URL");
    let settings = recording_worker::WorkerSettings::from_source(
        &TestEnv::new()
            .database(&stack.db)
            .set("DATABASE_POOL_SIZE", "2")
            .set("DATABASE_TIMEOUT_SECONDS", "2")
            .broker(&stack.broker)
            .set("WORKER_PREFETCH", "4")
            .set("WORKER_BATCH_SIZE", "4")
            .set("WORKER_SHUTDOWN_SECONDS", "2")
            .set(
                "RECORDING_STORAGE_AWS_BUCKET_NAME",
                stack.aws.bucket.clone(),
            )
            .set("SQS_POLLING_TIMEOUT_SECONDS", "1")
            .set("SQS_VISIBILITY_TIMEOUT_SECONDS", "5")
            .set("JOB_SCAN_INTERVAL_SECONDS", "0")
            .set("JOB_RETENTION_INTERVAL_SECONDS", "0")
            .set("JOB_MEETING_CLEANUP_INTERVAL_SECONDS", "0")
            .set("MEETING_EMPTY_GRACE_SECONDS", "60")
            .set("WHEREBY_API_KEY", KEY)
            .set("WHEREBY_API_URL", stack.whereby.api_url.clone())
            .set("WHEREBY_TIMEOUT_SECONDS", "2")
            .set("WHEREBY_MAX_ATTEMPTS", "1")
            .set("WHEREBY_MAX_RETRY_AFTER_SECONDS", "1")
            .source(),
    )
    .expect("worker settings");
    let app = recording_worker::Application::build_with_listener(
        settings,
        TcpListener::bind("127.0.0.1:0").expect("bind"),
    )
    .await
    .expect("worker");
    let worker_url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    let (code, out) = ops(env, &["recordings", "rescan", "--worker-url", &worker_url]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("registered 1"), "{out}");
    assert_eq!(
        stack
            .db
            .count("SELECT 1 FROM recordings WHERE status = 'unmatched'")
            .await,
        1
    );
    let (code, _) = ops(
        stack.env(),
        &["recordings", "rescan", "--worker-url", "http://127.0.0.1:9"],
    )
    .await;
    assert_eq!(code, 1);
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let (code, _) = ops(HashMap::new(), &["frobnicate"]).await;
    assert_eq!(code, 2);
    let (code, _) = ops(HashMap::new(), &["dlq", "list", "--limit", "many"]).await;
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reapply_sends_unrecognised_events_back_to_the_worker() {
    let stack = Stack::new().await;
    // One unrecognised event (recorded a minute ago) and one applied.
    stack
        .db
        .execute(
            "INSERT INTO webhook_events (event_id, event_type, created_at, received_at, outcome, payload, reason) VALUES \
             ('evt-unrec', 'room.session.started', now(), now(), 'unrecognised', \
              '{\"id\":\"evt-unrec\",\"type\":\"room.session.started\",\"createdAt\":\"2030-01-01T00:00:00Z\",\"data\":{\"meetingId\":\"1\",\"roomSessionId\":null}}', \
              'session event without a roomSessionId'), \
             ('evt-fine', 'room.session.started', now(), now(), 'applied', '{\"id\":\"evt-fine\"}', NULL)",
        )
        .await;
    let (code, out) = ops(stack.env(), &["events", "reapply"]).await;
    // A missing required option is a usage error (2), before anything is read.
    assert_eq!(code, 2, "--since is required: {out}");
    let (code, out) = ops(
        stack.env(),
        &["events", "reapply", "--since", "1h", "--json"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 unrecognised event(s)"), "{out}");
    let topology = &stack.broker.topology;
    assert_eq!(stack.broker.ready_count(&topology.worker_queue()).await, 1);
    let (conn, channel) = stack.broker.channel().await;
    let got = channel
        .basic_get(topology.worker_queue().as_str().into(), Default::default())
        .await
        .expect("get")
        .expect("the reapplied event");
    let envelope: Value = serde_json::from_slice(&got.delivery.data).expect("json");
    assert_eq!(envelope["event"]["id"], "evt-unrec");
    assert_eq!(envelope["schema_version"], 1);
    assert_eq!(
        got.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str()),
        Some("evt-unrec")
    );
    let _ = conn.close(200, "bye".into()).await;
    // Nothing since the future: nothing sent.
    let (code, out) = ops(
        stack.env(),
        &["events", "reapply", "--since", "2999-01-01T00:00:00Z"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 unrecognised event(s)"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_a_persons_data_and_says_what_it_did() {
    let stack = Stack::new().await;
    stack.db.execute("INSERT INTO rooms (id, name, owner) VALUES ('00000000-0000-0000-0000-000000000001', 'r', 'a')").await;
    stack.db.execute("INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, is_locked, room_mode, recording_type, recording_trigger, platform) VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', 'a', 'w1', '/r', 'u', now(), now() + interval '1 hour', false, 'normal', 'cloud', 'none', 'whereby')").await;
    stack.db.execute("INSERT INTO meeting_participants (meeting_id, participant_id, display_name, external_id, is_person, state, state_as_of, state_event_id) VALUES ('00000000-0000-0000-0000-000000000002', 'p1', 'Ada', 'user-9', true, 'joined', now(), 'e1')").await;
    let (code, out) = ops(stack.env(), &["erase", "--external-id", "user-9"]).await;
    assert_eq!(code, 2, "--requested-by is required (usage error): {out}");
    let (code, out) = ops(
        stack.env(),
        &[
            "erase",
            "--external-id",
            "user-9",
            "--requested-by",
            "ticket 12",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 participant(s)"), "{out}");
    assert_eq!(
        stack
            .db
            .count("SELECT 1 FROM meeting_participants WHERE display_name IS NULL AND external_id IS NULL")
            .await,
        1
    );
    assert_eq!(
        stack
            .db
            .count("SELECT 1 FROM erasures WHERE requested_by = 'ticket 12'")
            .await,
        1
    );
}

/// Only these keys of the stack's environment: what one service's pod has.
fn only(env: &HashMap<String, String>, keys: &[&str]) -> HashMap<String, String> {
    env.iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_for_a_service_checks_only_what_that_service_uses_and_passes_in_its_pod() {
    let stack = Stack::new().await;
    let env = stack.env();
    let aws = [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ];
    // Each pod's environment as the manifests give it, and the bucket without the
    // privacy settings an operator's doctor checks (not any service's concern).
    let bare = stack.aws.bare_bucket().await;
    // (service, the keys its pod has, checks it makes, checks it leaves out)
    type Pod<'a> = (&'a str, Vec<&'a str>, &'a [&'a str], &'a [&'a str]);
    let pods: [Pod; 3] = [
        (
            "webhook-ingest",
            vec!["WHEREBY_WEBHOOK_SECRET", "AMQP_URL", "AMQP_PREFIX"],
            &["setting WHEREBY_WEBHOOK_SECRET", "rabbitmq"],
            &[
                "postgres",
                "whereby api",
                "setting AUTH_*",
                "sqs",
                "s3 (services)",
            ],
        ),
        (
            "room-api",
            [
                vec![
                    "DATABASE_URL",
                    "WHEREBY_API_KEY",
                    "WHEREBY_API_URL",
                    "RECORDING_STORAGE_AWS_BUCKET_NAME",
                    "AWS_WHEREBY_ACCESS_KEY_ID",
                    "AWS_WHEREBY_ACCESS_KEY_SECRET",
                    "AUTH_JWT_SECRET",
                ],
                aws.to_vec(),
            ]
            .concat(),
            &[
                "setting AUTH_*",
                "whereby api",
                "postgres",
                "s3 (whereby's key)",
            ],
            &["rabbitmq", "sqs", "s3 (services)", "s3 (privacy)"],
        ),
        (
            "recording-worker",
            [
                vec![
                    "DATABASE_URL",
                    "AMQP_URL",
                    "AMQP_PREFIX",
                    "WHEREBY_API_KEY",
                    "WHEREBY_API_URL",
                    "RECORDING_STORAGE_AWS_BUCKET_NAME",
                    "AWS_PROCESS_RECORDING_QUEUE_URL",
                ],
                aws.to_vec(),
            ]
            .concat(),
            &[
                "whereby api",
                "postgres",
                "rabbitmq",
                "s3 (services)",
                "sqs",
            ],
            &[
                "setting AUTH_*",
                "s3 (privacy)",
                "s3 (whereby's key)",
                "setting WHEREBY_WEBHOOK_SECRET",
            ],
        ),
    ];
    for (service, keys, checked, unchecked) in pods {
        let mut pod = only(&env, &keys);
        if pod.contains_key("RECORDING_STORAGE_AWS_BUCKET_NAME") {
            pod.insert("RECORDING_STORAGE_AWS_BUCKET_NAME".into(), bare.clone());
        }
        let (code, out) = ops(pod.clone(), &["doctor", "--for", service, "--json"]).await;
        let all = checks(&out);
        assert_eq!(code, 0, "{service}: {out}");
        for name in checked {
            assert!(
                all.iter().any(|(n, s)| n == name && s == "ok"),
                "{service} checks {name}: {all:?}"
            );
        }
        for name in unchecked {
            assert!(
                all.iter().all(|(n, _)| n != name),
                "{service} does not check {name}: {all:?}"
            );
        }
        // The operator's doctor in the same environment fails: it checks more.
        let (code, _) = ops(pod, &["doctor", "--json"]).await;
        assert_eq!(code, 1, "{service}: the full doctor needs every setting");
    }
    let (code, _) = ops(env, &["doctor", "--for", "everything"]).await;
    assert_eq!(code, 2, "an unknown service is a usage error");
}

#[tokio::test]
async fn completions_are_printed_for_a_shell() {
    let (code, out) = ops(HashMap::new(), &["completions", "bash"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("whereby-ops") && out.contains("doctor") && out.contains("--for"),
        "{out}"
    );
    let (code, _) = ops(HashMap::new(), &["completions", "cmd.exe"]).await;
    assert_eq!(code, 2);
}
