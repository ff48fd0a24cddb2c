//! The real binaries as processes, as they run in production: JSON logs that never
//! contain a secret, a request id that travels from the HTTP edge to the worker's
//! log lines, and SIGTERM under load losing nothing.
//!
//! Needs the binaries built (`make test` builds them first); `WHEREBY_BIN_DIR`
//! overrides where they are looked for (default: next to this test's directory).

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    time::{Duration, Instant},
};

use whereby_bench::procs::free_port;

use serde_json::{Value, json};
use test_support::{TestAws, TestBroker, TestDatabase};

/// The services as processes (the fault suite's harness).
struct Proc(whereby_bench::procs::Proc);

impl Proc {
    fn start(name: &str, env: &HashMap<String, String>, dir: &std::path::Path) -> Self {
        Self(
            whereby_bench::procs::Proc::start(name, env, dir)
                .unwrap_or_else(|e| panic!("{name}: {e}")),
        )
    }

    /// SIGTERM, then the drain must end with a clean exit.
    fn terminate(&mut self) {
        assert!(
            self.0.terminate(Duration::from_secs(30)),
            "{} did not drain cleanly after SIGTERM",
            self.0.name
        );
    }

    fn output(&self) -> String {
        self.0.output()
    }
}

async fn wait_http(url: &str, what: &str) {
    let started = Instant::now();
    while !reqwest::get(url)
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} not ready at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const API_KEY: &str = "proc-whereby-key-9f3a1c";
const WEBHOOK_SECRET: &str = "proc-webhook-secret-77d2e0";
const JWT_SECRET: &str = "proc-jwt-secret-that-is-long-enough-5b8c4e";
const AWS_SECRET: &str = "proc-aws-whereby-secret-c01d";
const DB_PASSWORD: &str = "proc-db-password-a7e9";

struct System {
    env: HashMap<String, String>,
    dir: PathBuf,
    room_api: String,
    ingest: String,
    worker: String,
    stand_in: String,
}

async fn system(db: &TestDatabase, broker: &TestBroker, aws: &TestAws) -> System {
    let dir = std::env::temp_dir().join(format!("whereby-procs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (api_port, ingest_port, worker_port, stand_in_port) =
        (free_port(), free_port(), free_port(), free_port());
    // Postgres trusts local connections, so the password is never needed, but it is
    // in the URL the services hold, and must never reach a log.
    let db_url = db
        .url
        .replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1);
    let env: HashMap<String, String> = [
        ("LOG_FORMAT", "json".to_owned()),
        ("LOG_LEVEL", "debug".to_owned()),
        ("DATABASE_URL", db_url),
        ("DATABASE_MIGRATE_ON_START", "false".to_owned()),
        ("AMQP_URL", broker.url.clone()),
        ("AMQP_PREFIX", broker.prefix().to_owned()),
        ("AMQP_RETRY_DELAYS_MS", "200,400,600".to_owned()),
        ("WHEREBY_API_KEY", API_KEY.to_owned()),
        (
            "WHEREBY_API_URL",
            format!("http://127.0.0.1:{stand_in_port}/v1"),
        ),
        ("WHEREBY_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("AUTH_JWT_SECRET", JWT_SECRET.to_owned()),
        ("RECORDING_STORAGE_AWS_BUCKET_NAME", aws.bucket.clone()),
        ("AWS_WHEREBY_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_WHEREBY_ACCESS_KEY_SECRET", AWS_SECRET.to_owned()),
        ("AWS_PROCESS_RECORDING_QUEUE_URL", aws.queue_url.clone()),
        ("AWS_ENDPOINT_URL", test_support::aws::endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("SQS_POLLING_TIMEOUT_SECONDS", "1".to_owned()),
        ("ROOM_API_ADDR", format!("127.0.0.1:{api_port}")),
        ("WEBHOOK_INGEST_ADDR", format!("127.0.0.1:{ingest_port}")),
        ("WORKER_ADDR", format!("127.0.0.1:{worker_port}")),
        (
            "WHEREBY_STAND_IN_ADDR",
            format!("127.0.0.1:{stand_in_port}"),
        ),
        (
            "WHEREBY_STAND_IN_WEBHOOK_URL",
            format!("http://127.0.0.1:{ingest_port}/v1/whereby"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    System {
        env,
        dir,
        room_api: format!("http://127.0.0.1:{api_port}"),
        ingest: format!("http://127.0.0.1:{ingest_port}"),
        worker: format!("http://127.0.0.1:{worker_port}"),
        stand_in: format!("http://127.0.0.1:{stand_in_port}"),
    }
}

/// W3C trace contexts sent by "upstream" callers: room-api's, and the edge's in
/// front of webhook-ingest.
const API_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const API_PARENT: &str = "b7ad6b7169203331";
const HOOK_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const HOOK_PARENT: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_carry_the_request_id_and_trace_and_never_contain_a_secret() {
    let (db, broker, aws) = (
        TestDatabase::new().await,
        TestBroker::new().await,
        TestAws::new().await,
    );
    let mut s = system(&db, &broker, &aws).await;
    // Traces on, as production turns them on: the standard variables only.
    let otlp = test_support::otlp::OtlpReceiver::start().await;
    s.env.extend(
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut procs = vec![
        Proc::start("whereby-stand-in", &s.env, &s.dir),
        Proc::start("room-api", &s.env, &s.dir),
        Proc::start("webhook-ingest", &s.env, &s.dir),
        Proc::start("recording-worker", &s.env, &s.dir),
    ];
    wait_http(&format!("{}/readyz", s.room_api), "room-api").await;
    wait_http(&format!("{}/readyz", s.ingest), "webhook-ingest").await;
    wait_http(&format!("{}/readyz", s.worker), "recording-worker").await;
    // One readiness shape for all three: one probe, dashboard and runbook line.
    for base in [&s.room_api, &s.ingest, &s.worker] {
        let ready: Value = reqwest::get(format!("{base}/readyz"))
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        let keys: BTreeSet<&str> = ready
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            BTreeSet::from(["checks", "status", "tasks_down"]),
            "{base}: {ready}"
        );
        assert_eq!(ready["status"], "ready", "{base}: {ready}");
        assert!(
            ready["checks"]
                .as_object()
                .is_some_and(|c| !c.is_empty() && c.values().all(|v| v == "up")),
            "{base}: {ready}"
        );
    }

    // Every process says which build it is and what it costs, under the standard
    // process metric names (the dashboard and alerts rely on both).
    for (base, prefix) in [
        (&s.room_api, "roomapi"),
        (&s.ingest, "ingest"),
        (&s.worker, "recworker"),
    ] {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let build = text
            .lines()
            .find(|l| l.starts_with(&format!("{prefix}_build_info{{")))
            .unwrap_or_else(|| panic!("{base}: no {prefix}_build_info"));
        assert!(
            build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
                && build.contains("git_sha=\"")
                && build.ends_with(" 1"),
            "{base}: {build}"
        );
        for series in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
        ] {
            let value: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("{base}: no {series}"));
            assert!(
                value > 0.0 || series == "process_cpu_seconds_total",
                "{base}: {series} {value}"
            );
        }
    }

    let token = room_api::auth::dev_token(
        &settings::AuthSettings::with_secret(secrecy::SecretString::from(JWT_SECRET.to_owned())),
        "alice",
        1,
    )
    .expect("token");
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/v1/rooms", s.room_api))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{API_TRACE}-{API_PARENT}-01"))
        .json(&json!({"name": "logs"}))
        .send()
        .await
        .expect("room");
    assert_eq!(res.status().as_u16(), 201);
    let meeting: Value = http
        .post(format!("{}/v1/rooms/logs/meeting", s.room_api))
        .bearer_auth(&token)
        .send()
        .await
        .expect("meeting")
        .json()
        .await
        .expect("json");
    let whereby_id = meeting["whereby_meeting_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let join = |name: &str| {
        http.post(format!(
            "{}/_stand-in/meetings/{whereby_id}/join",
            s.stand_in
        ))
        .json(&json!({"display_name": name}))
        .send()
    };
    join("Ada").await.expect("join");
    let bob: Value = join("Bob").await.expect("join").json().await.expect("json");
    http.post(format!(
        "{}/_stand-in/meetings/{whereby_id}/leave",
        s.stand_in
    ))
    .json(&json!({"participant_id": bob["participant_id"]}))
    .send()
    .await
    .expect("leave");

    // A webhook with our own request id, and one with a wrong signature.
    let body = serde_json::to_vec(&json!({"id": "req-id-event", "apiVersion": "1.0", "createdAt": "2030-01-01T00:00:00.000Z", "type": "room.session.started", "data": {"meetingId": whereby_id, "roomSessionId": "rs"}})).expect("json");
    let signature = whereby::webhook::sign(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
    let res = http
        .post(format!("{}/v1/whereby", s.ingest))
        .header("Whereby-Signature", &signature)
        .header("X-Request-Id", "edge-req-4711")
        .header("traceparent", format!("00-{HOOK_TRACE}-{HOOK_PARENT}-01"))
        .body(body.clone())
        .send()
        .await
        .expect("webhook");
    assert_eq!(res.status().as_u16(), 200);
    let forged = whereby::webhook::sign("not-the-secret", chrono::Utc::now().timestamp(), &body);
    let res = http
        .post(format!("{}/v1/whereby", s.ingest))
        .header("Whereby-Signature", &forged)
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(res.status().as_u16(), 401);

    let started = Instant::now();
    while db
        .count("SELECT 1 FROM recordings WHERE status = 'queued'")
        .await
        < 1
        || db
            .count("SELECT 1 FROM webhook_events WHERE event_id = 'req-id-event'")
            .await
            < 1
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the flow did not complete"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for p in &mut procs {
        p.terminate();
    }

    let secrets = [
        API_KEY,
        WEBHOOK_SECRET,
        JWT_SECRET,
        AWS_SECRET,
        DB_PASSWORD,
        token.as_str(),
        signature.as_str(),
        forged.as_str(),
    ];
    let sig_hex = signature.split("v1=").nth(1).unwrap_or("x").to_owned();
    for p in &procs {
        let out = p.output();
        assert!(!out.trim().is_empty(), "{} logged nothing", p.0.name);
        for secret in secrets.iter().copied().chain([sig_hex.as_str()]) {
            assert!(
                !out.contains(secret),
                "{} logged a secret ({}…)",
                p.0.name,
                &secret[..6.min(secret.len())]
            );
        }
        if p.0.name != "whereby-stand-in" {
            for line in out.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    serde_json::from_str::<Value>(line).is_ok(),
                    "{}: not a JSON log line: {line}",
                    p.0.name
                );
            }
        }
    }
    let ingest_log = procs[2].output();
    let worker_log = procs[3].output();
    assert!(
        ingest_log.contains("edge-req-4711"),
        "ingest logs the request id"
    );
    assert!(
        worker_log
            .lines()
            .any(|l| l.contains("edge-req-4711") && l.contains("req-id-event")),
        "the worker's log lines for the event carry the edge's request id"
    );

    // Every JSON line names its service and version; the event's lines in the
    // worker carry the webhook's trace.
    for p in procs.iter().filter(|p| p.0.name != "whereby-stand-in") {
        for line in p.output().lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("json");
            assert_eq!(v["service"], p.0.name.as_str(), "{line}");
            assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{line}");
        }
    }
    assert!(
        worker_log
            .lines()
            .any(|l| l.contains("req-id-event")
                && l.contains(&format!("\"trace_id\":\"{HOOK_TRACE}\""))),
        "the worker's lines for the event carry its trace id"
    );

    // One trace from the edge's POST, through webhook-ingest and the queue, to the
    // worker's event span (the commit within); room-api's request joins its caller's.
    let spans = otlp.spans();
    let of = |service: &str, trace: &str| -> Vec<test_support::otlp::Span> {
        spans
            .iter()
            .filter(|sp| sp.service == service && sp.trace_id == trace)
            .cloned()
            .collect()
    };
    let api = of("room-api", API_TRACE);
    assert!(
        api.iter()
            .any(|sp| sp.name == "http" && sp.parent_span_id == API_PARENT),
        "room-api's request span is a child of its caller's: {spans:?}"
    );
    let ingest = of("webhook-ingest", HOOK_TRACE);
    let ingest_http = ingest
        .iter()
        .find(|sp| sp.name == "http" && sp.parent_span_id == HOOK_PARENT)
        .unwrap_or_else(|| {
            panic!("webhook-ingest's request span joins the edge's trace: {spans:?}")
        });
    let worker = of("recording-worker", HOOK_TRACE);
    let event = worker
        .iter()
        .find(|sp| sp.name == "event" && ingest.iter().any(|i| i.span_id == sp.parent_span_id))
        .unwrap_or_else(|| {
            panic!(
                "the worker's event span is a child of webhook-ingest's (request {}): {spans:?}",
                ingest_http.span_id
            )
        });
    // The transaction that committed it links to it.
    assert!(
        spans.iter().any(|sp| sp.service == "recording-worker"
            && sp.name == "apply_batch"
            && sp
                .links
                .contains(&(HOOK_TRACE.to_owned(), event.span_id.clone()))),
        "the batch's span links the event's: {spans:?}"
    );
    // The recording announced on SQS has a trace of its own, handed on to the
    // pipeline: recording.ready carries its context.
    let connection = messaging::connect(&broker.url, "e2e-traces", Duration::from_secs(5))
        .await
        .expect("amqp");
    let channel = connection.create_channel().await.expect("channel");
    let ready = channel
        .basic_get(
            broker.topology.pipeline_queue().as_str().into(),
            messaging::lapin::options::BasicGetOptions::default(),
        )
        .await
        .expect("basic.get")
        .expect("a recording.ready message for the pipeline");
    let traceparent =
        messaging::header_str(ready.delivery.properties.headers().as_ref(), "traceparent")
            .expect("recording.ready carries a traceparent");
    let trace = traceparent
        .split('-')
        .nth(1)
        .expect("a trace id")
        .to_owned();
    assert!(
        spans.iter().any(|sp| sp.service == "recording-worker"
            && sp.name == "recording_notification"
            && sp.trace_id == trace),
        "recording.ready's trace is the notification's ({traceparent}): {spans:?}"
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_that_was_accepted() {
    let (db, broker, aws) = (
        TestDatabase::new().await,
        TestBroker::new().await,
        TestAws::new().await,
    );
    let s = system(&db, &broker, &aws).await;
    db.execute("INSERT INTO rooms (id, name, owner) VALUES ('00000000-0000-0000-0000-00000000000a', 'load', 'a')").await;
    db.execute("INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, is_locked, room_mode, recording_type, recording_trigger, platform) VALUES ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000a', 'a', 'load-1', '/load-x', 'u', now(), now() + interval '1 hour', false, 'normal', 'none', 'none', 'whereby')").await;
    let mut ingest = Proc::start("webhook-ingest", &s.env, &s.dir);
    let mut worker = Proc::start("recording-worker", &s.env, &s.dir);
    wait_http(&format!("{}/readyz", s.ingest), "webhook-ingest").await;
    wait_http(&format!("{}/readyz", s.worker), "recording-worker").await;

    // A sender that behaves like Whereby: retries on 5xx and connection errors.
    let url = format!("{}/v1/whereby", s.ingest);
    let send_all = |from: usize, to: usize| {
        let url = url.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client");
            let mut accepted = BTreeSet::new();
            for i in from..to {
                let id = format!("load-{i:05}");
                let body = serde_json::to_vec(&json!({"id": id, "apiVersion": "1.0", "createdAt": chrono::Utc::now().to_rfc3339(), "type": "room.client.joined",
                    "data": {"meetingId": "load-1", "participantId": format!("p{i}"), "roleName": "visitor", "numClients": i + 1, "numClientsByRoleName": {"visitor": i + 1}}})).expect("json");
                for _attempt in 0..200 {
                    let sig = whereby::webhook::sign(
                        WEBHOOK_SECRET,
                        chrono::Utc::now().timestamp(),
                        &body,
                    );
                    match http
                        .post(&url)
                        .header("Whereby-Signature", sig)
                        .body(body.clone())
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            accepted.insert(id.clone());
                            break;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            accepted
        })
    };
    let senders: Vec<_> = (0..4).map(|k| send_all(k * 150, (k + 1) * 150)).collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Both stop mid-stream: ingest finishes what it is publishing, the worker what
    // it is applying; then both come back.
    ingest.terminate();
    worker.terminate();
    let mut ingest = Proc::start("webhook-ingest", &s.env, &s.dir);
    let worker2 = Proc::start("recording-worker", &s.env, &s.dir);
    let mut accepted = BTreeSet::new();
    for sender in senders {
        accepted.extend(sender.await.expect("sender"));
    }
    assert_eq!(
        accepted.len(),
        600,
        "the sender got every event through, retrying like Whereby"
    );
    let started = Instant::now();
    while db.count("SELECT 1 FROM webhook_events").await < 600 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not all accepted events were applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        db.count("SELECT 1 FROM meeting_participants").await,
        600,
        "each applied once"
    );
    assert_eq!(
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await,
        0
    );
    ingest.terminate();
    drop(worker2);
    drop(worker);
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Unauthenticated bodies cannot exhaust a pod: 600 concurrent slow 256 KiB bodies
/// (half with no signature, half with a forged but well-formed, fresh one) hold
/// at most the byte budget, the process stays alive and small, and a signed
/// webhook sent alongside is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_slow_unsigned_bodies_cannot_exhaust_ingest() {
    use tokio::io::AsyncWriteExt;
    let (db, broker, aws) = (
        TestDatabase::new().await,
        TestBroker::new().await,
        TestAws::new().await,
    );
    let s = system(&db, &broker, &aws).await;
    // The byte budget alone: with the failure limiter on, most of these requests
    // would be refused 429 before their bodies were read.
    let mut env = s.env.clone();
    env.insert("WEBHOOK_FAILURE_BURST".to_owned(), "100000".to_owned());
    let mut ingest = Proc::start("webhook-ingest", &env, &s.dir);
    wait_http(&format!("{}/readyz", s.ingest), "webhook-ingest").await;
    let addr = s.ingest.trim_start_matches("http://").to_owned();
    let (idle_kib, _) = ingest.0.usage();

    const BODY: usize = 256 * 1024;
    let forged = whereby::webhook::sign("not-the-secret", chrono::Utc::now().timestamp(), b"x");
    let mut slow = Vec::new();
    for i in 0..600 {
        let addr = addr.clone();
        let signature = (i % 2 == 0).then(|| forged.clone());
        slow.push(tokio::spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else {
                return;
            };
            let mut head = format!(
                "POST /v1/whereby HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {BODY}\r\n"
            );
            if let Some(sig) = signature {
                head.push_str(&format!("Whereby-Signature: {sig}\r\n"));
            }
            head.push_str("\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            // Most of the body, slowly; never the end of it.
            let chunk = vec![b' '; 16 * 1024];
            for _ in 0..12 {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A genuine webhook alongside.
    let body = serde_json::to_vec(
        &json!({"id": "mem-1", "apiVersion": "1.0", "type": "room.client.joined",
        "createdAt": "2030-01-01T00:00:00.000Z", "data": {"meetingId": "1"}}),
    )
    .expect("json");
    let signature = whereby::webhook::sign(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
    let res = reqwest::Client::new()
        .post(format!("{}/v1/whereby", s.ingest))
        .header("Whereby-Signature", signature)
        .header("Content-Type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the signed webhook is answered");
    assert_eq!(res.status().as_u16(), 200);
    for t in slow {
        let _ = t.await;
    }
    let (peak_kib, _) = ingest.0.usage();
    eprintln!("webhook-ingest RSS: idle {idle_kib} KiB, peak {peak_kib} KiB under 600 slow bodies");
    assert!(ingest.0.alive(), "webhook-ingest died");
    // The byte budget is 16 MiB by default, the container limit 128 MiB.
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
    let metrics = reqwest::get(format!("{}/metrics", s.ingest))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("ingest_webhooks_rejected_total{reason=\"signature_missing\"} 300"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("rejected"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    ingest.terminate();
}
