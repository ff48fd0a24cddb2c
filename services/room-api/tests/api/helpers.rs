use std::{net::TcpListener, time::Duration};

use reqwest::{Method, Response};
use room_api::{Application, RoomApiSettings};
use serde_json::Value;
use test_support::{TestDatabase, TestEnv};
use tokio_util::sync::CancellationToken;
use whereby_stand_in::{StandInConfig, StandInServer};

pub const JWT_SECRET: &str = "test-jwt-secret-that-is-long-enough-0123456789";
pub const WHEREBY_KEY: &str = "whereby-test-api-key-4f1c";
pub const AWS_KEY_ID: &str = "AKIATESTWHEREBY";
pub const AWS_SECRET: &str = "aws-secret-never-shown-9d2e";
pub const BUCKET: &str = "recordings-test-bucket";

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    pub whereby: StandInServer,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting; the runtime ends the server task with the test.
        self.shutdown.cancel();
    }
}

pub fn base_settings(db_url: &str, whereby_url: &str) -> RoomApiSettings {
    let env = TestEnv::new()
        .database_url(db_url)
        .set("DATABASE_POOL_SIZE", "10")
        .set("ROOM_API_WORKERS", "2")
        .set("ROOM_API_SHUTDOWN_SECONDS", "1")
        .set("BRANDING_RETRY_SECONDS", "1")
        .set("WHEREBY_API_KEY", WHEREBY_KEY)
        .set("WHEREBY_API_URL", whereby_url)
        .set("WHEREBY_TIMEOUT_SECONDS", "5")
        .set("WHEREBY_MAX_ATTEMPTS", "3")
        .set("WHEREBY_MAX_RETRY_AFTER_SECONDS", "2")
        .set("RECORDING_STORAGE_AWS_BUCKET_NAME", BUCKET)
        .set("AWS_WHEREBY_ACCESS_KEY_ID", AWS_KEY_ID)
        .set("AWS_WHEREBY_ACCESS_KEY_SECRET", AWS_SECRET)
        .set("AUTH_JWT_SECRET", JWT_SECRET)
        .set("WHEREBY_PLAN_MEETING_LIMIT", "25")
        .set("AUTH_SERVICE_SUBJECTS", "svc-pipeline")
        .set("AUTH_OPERATOR_SUBJECTS", "ops-1, ops-2")
        .set("RECORDING_DOWNLOAD_URL_SECONDS", "300");
    RoomApiSettings::from_source(&env.source()).expect("room-api test settings")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the stand-in and room-api; `customise` adjusts settings first.
pub async fn spawn_app_with(customise: impl FnOnce(&mut RoomApiSettings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        // The subscriber stays for the process; there is no exporter to flush.
        drop(telemetry::init("test", false, "info"));
    }
    let db = TestDatabase::new().await;
    let whereby = StandInServer::spawn(StandInConfig {
        api_key: WHEREBY_KEY.to_owned(),
        subdomain: "acme".to_owned(),
        webhooks: None,
        s3_endpoint: None,
    })
    .expect("start Whereby stand-in");
    let mut settings = base_settings(&db.url, &whereby.api_url);
    customise(&mut settings);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let app = Application::build_with_listener(settings, listener)
        .await
        .expect("build app");
    let port = app.port();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        db,
        whereby,
        shutdown,
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A valid HS256 token for `sub`.
pub fn token(sub: &str) -> String {
    room_api::auth::mint_hs256(
        JWT_SECRET,
        &room_api::auth::Claims {
            sub: sub.to_owned(),
            exp: now_secs() + 3600,
            aud: None,
            iss: None,
        },
    )
    .expect("mint")
}

impl TestApp {
    /// `GET /metrics`, as text.
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

    /// `GET /readyz`: the status code and the body.
    pub async fn readyz(&self) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}/readyz", self.address))
            .send()
            .await
            .expect("readyz");
        let code = res.status().as_u16();
        (code, res.json().await.expect("json"))
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.address, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("request")
    }

    pub async fn post(&self, path: &str, user: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(&token(user)), Some(body))
            .await
    }

    pub async fn get(&self, path: &str, user: &str) -> Response {
        self.request(Method::GET, path, Some(&token(user)), None)
            .await
    }

    pub async fn patch(&self, path: &str, user: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path, Some(&token(user)), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, user: &str) -> Response {
        self.request(Method::DELETE, path, Some(&token(user)), None)
            .await
    }

    /// Creates a room as `user` and returns its JSON (asserting 201).
    pub async fn create_room(&self, user: &str, body: Value) -> Value {
        let res = self.post("/v1/rooms", user, &body).await;
        assert_eq!(res.status().as_u16(), 201, "create room {body}");
        res.json().await.expect("room json")
    }

    /// Asks for the room's meeting; returns status and JSON.
    pub async fn meeting(&self, room: &str, user: &str) -> (u16, Value) {
        let res = self
            .request(
                Method::POST,
                &format!("/v1/rooms/{room}/meeting"),
                Some(&token(user)),
                None,
            )
            .await;
        let status = res.status().as_u16();
        (status, res.json().await.expect("json"))
    }

    pub async fn meeting_rows(&self) -> usize {
        self.db.count("SELECT id FROM meetings").await
    }

    /// The `POST /meetings` bodies the stand-in received.
    pub fn whereby_create_bodies(&self) -> Vec<Value> {
        self.whereby
            .stand_in
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/meetings")
            .filter_map(|r| r.body)
            .collect()
    }
}

/// Asserts the status and the documented error shape (`ErrorBody`: only
/// `error`, with `code` one of `ErrorCode`, `message`, and `field` when present a
/// string), and returns the error.
pub async fn error_code(res: Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    let body: Value = res.json().await.expect("error json");
    let object = body.as_object().expect("an object");
    assert_eq!(object.keys().collect::<Vec<_>>(), ["error"], "{body}");
    let error = body["error"].as_object().expect("error object");
    assert!(
        error
            .keys()
            .all(|k| ["code", "message", "field"].contains(&k.as_str())),
        "{body}"
    );
    let code = body["error"]["code"].as_str().expect("code");
    assert!(
        room_api::errors::ErrorCode::ALL
            .iter()
            .any(|c| c.as_str() == code),
        "{code} is not in ErrorCode"
    );
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(error.get("field").is_none_or(Value::is_string), "{body}");
    body["error"].clone()
}
