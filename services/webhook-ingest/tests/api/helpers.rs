use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use test_support::{TestBroker, TestEnv};
use tokio_util::sync::CancellationToken;
use webhook_ingest::{Application, IngestSettings};

pub const SECRET: &str = "whsec-current-0123456789";
pub const OLD_SECRET: &str = "whsec-previous-9876543210";

pub struct TestIngest {
    pub address: String,
    pub http: reqwest::Client,
    pub broker: TestBroker,
    shutdown: CancellationToken,
}

impl Drop for TestIngest {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn settings(broker: &TestBroker, secrets: &str) -> IngestSettings {
    let env = TestEnv::new()
        .broker(broker)
        .set("WEBHOOK_INGEST_WORKERS", "2")
        .set("WEBHOOK_BODY_LIMIT_BYTES", "65536")
        .set("WEBHOOK_INGEST_SHUTDOWN_SECONDS", "1")
        .set("WEBHOOK_MAX_IN_FLIGHT", "256")
        .set("WHEREBY_WEBHOOK_SECRET", secrets)
        .set("AMQP_PUBLISH_TIMEOUT_MS", "2000")
        .set("AMQP_CONNECT_TIMEOUT_SECONDS", "2");
    IngestSettings::from_source(&env.source()).expect("webhook-ingest test settings")
}

pub async fn spawn_ingest(broker: TestBroker) -> TestIngest {
    let s = settings(&broker, &format!("{SECRET}, {OLD_SECRET}"));
    spawn_with(broker, s, true).await
}

pub async fn spawn_with(
    broker: TestBroker,
    settings: IngestSettings,
    wait_ready: bool,
) -> TestIngest {
    if std::env::var_os("TEST_LOG").is_some() {
        // The subscriber stays for the process; there is no exporter to flush.
        drop(telemetry::init("test", false, "info"));
    }
    let app =
        Application::build_with_listener(settings, TcpListener::bind("127.0.0.1:0").expect("bind"))
            .await
            .expect("build ingest");
    let port = app.port();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    let ingest = TestIngest {
        address: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client"),
        broker,
        shutdown,
    };
    if wait_ready {
        ingest.wait_ready(true, Duration::from_secs(15)).await;
    }
    ingest
}

impl TestIngest {
    pub async fn is_ready(&self) -> bool {
        self.http
            .get(format!("{}/v1/whereby/health", self.address))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }

    pub async fn wait_ready(&self, ready: bool, timeout: Duration) {
        let started = Instant::now();
        while self.is_ready().await != ready {
            assert!(
                started.elapsed() < timeout,
                "readiness did not become {ready}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POSTs raw bytes with an optional signature header; returns status and body.
    pub async fn post(&self, body: &[u8], signature: Option<&str>) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}/v1/whereby", self.address))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("Whereby-Signature", sig);
        }
        let res = req.send().await.expect("post");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    /// The prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub async fn queued(&self) -> u32 {
        self.broker
            .ready_count(&self.broker.topology.worker_queue())
            .await
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn sample_event(id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "apiVersion": "1.0", "createdAt": "2030-01-01T09:05:12.481Z", "type": "room.client.joined",
        "data": {"meetingId": "61490154", "roomName": "/standup-1", "subdomain": "acme", "roomSessionId": "s",
                 "participantId": "p", "displayName": "Zoë", "roleName": "host", "numClients": 1,
                 "numClientsByRoleName": {"host": 1}, "isDialIn": false, "metadata": null, "externalId": null}
    }))
    .expect("json")
}

pub fn signed(secret: &str, t: i64, body: &[u8]) -> String {
    whereby::webhook::sign(secret, t, body)
}

pub fn v1_of(header: &str) -> String {
    header.split("v1=").nth(1).unwrap_or("").to_owned()
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}
