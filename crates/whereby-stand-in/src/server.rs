//! The stand-in itself: its config, the state every handler shares, the route
//! table, and [`StandInServer`], the running HTTP server tests start and stop.

use std::{
    collections::{BTreeMap, VecDeque},
    net::TcpListener,
    sync::{Arc, Mutex, atomic::AtomicU64},
};

use actix_web::{App, HttpServer, dev::ServerHandle, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::{
    api,
    control::{self, Fault, RecordedRequest},
    theme, webhooks,
};

#[derive(Debug, Clone)]
pub struct StandInConfig {
    /// The bearer token the stand-in accepts.
    pub api_key: String,
    /// The organisation subdomain used in room URLs.
    pub subdomain: String,
    /// Where webhooks go, signed with which secret; none: no webhooks.
    pub webhooks: Option<webhooks::WebhookTarget>,
    /// The S3 endpoint cloud recordings are uploaded to (an emulator locally),
    /// with the credentials each meeting request carries; none: no uploads.
    pub s3_endpoint: Option<String>,
}

impl Default for StandInConfig {
    fn default() -> Self {
        Self {
            api_key: "stand-in-api-key".to_owned(),
            subdomain: "stand-in".to_owned(),
            webhooks: None,
            s3_endpoint: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredMeeting {
    pub(crate) meeting_id: String,
    pub(crate) room_name: String,
    pub(crate) room_url: String,
    pub(crate) start_date: String,
    pub(crate) end_date: String,
    pub(crate) host_room_url: String,
    pub(crate) viewer_room_url: String,
    pub(crate) request: Value,
    #[serde(skip)]
    pub(crate) clients: Vec<webhooks::Client>,
    #[serde(skip)]
    pub(crate) session: Option<String>,
    #[serde(skip)]
    pub(crate) session_started: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) meetings: Mutex<BTreeMap<u64, StoredMeeting>>,
    pub(crate) faults: Mutex<VecDeque<Fault>>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) next_id: AtomicU64,
    /// Every webhook body sent, for replays.
    pub(crate) sent: Mutex<Vec<Vec<u8>>>,
    /// Themes by Whereby room name (with its leading `/`).
    pub(crate) themes: Mutex<BTreeMap<String, theme::Theme>>,
}

/// Shared state plus config; cheap to clone.
#[derive(Clone)]
pub struct StandIn {
    pub(crate) config: Arc<StandInConfig>,
    pub(crate) state: Arc<State>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking handler must not wedge the stand-in for every later test.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StandIn {
    pub fn new(config: StandInConfig) -> Self {
        // Numeric ids like Whereby's, starting from the clock so that a restarted
        // stand-in never hands out an id an earlier run already gave.
        let first_id = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(1000);
        let state = State {
            next_id: AtomicU64::new(first_id),
            ..State::default()
        };
        Self {
            config: Arc::new(config),
            state: Arc::new(state),
        }
    }

    /// What a room's theme was set to (`room_name` with its leading `/`).
    pub fn theme(&self, room_name: &str) -> Option<theme::Theme> {
        lock(&self.state.themes).get(room_name).cloned()
    }

    /// How many meetings exist (created and not deleted).
    pub fn meeting_count(&self) -> usize {
        lock(&self.state.meetings).len()
    }

    /// Registers the API and control routes on an actix `ServiceConfig`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            // Theme images: Whereby recommends at most 600 kB.
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .route("/v1/meetings", web::post().to(api::create_meeting))
            .route("/v1/meetings", web::get().to(api::list_meetings))
            .route("/v1/meetings/{id}", web::get().to(api::get_meeting))
            .route("/v1/meetings/{id}", web::delete().to(api::delete_meeting))
            .route(
                "/v1/rooms/{room}/theme/tokens",
                web::put().to(theme::put_tokens),
            )
            .route(
                "/v1/rooms/{room}/theme/logo",
                web::put().to(theme::put_logo),
            )
            .route(
                "/v1/rooms/{room}/theme/room-background",
                web::put().to(theme::put_background),
            )
            .route("/_stand-in/faults", web::post().to(control::post_fault))
            .route(
                "/_stand-in/faults",
                web::delete().to(control::delete_faults),
            )
            .route("/_stand-in/requests", web::get().to(control::get_requests))
            .route(
                "/_stand-in/meetings/{id}/join",
                web::post().to(webhooks::join),
            )
            .route(
                "/_stand-in/meetings/{id}/leave",
                web::post().to(webhooks::leave),
            )
            .route(
                "/_stand-in/webhooks/replay",
                web::post().to(webhooks::replay),
            );
    }
}

/// A running stand-in.
pub struct StandInServer {
    pub stand_in: StandIn,
    /// Base URL of the API, `http://127.0.0.1:PORT/v1`, as `WHEREBY_API_URL` wants it.
    pub api_url: String,
    pub port: u16,
    handle: ServerHandle,
}

impl StandInServer {
    /// Starts on `listener` in the current tokio runtime.
    pub fn start(listener: TcpListener, config: StandInConfig) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let stand_in = StandIn::new(config);
        let app_state = stand_in.clone();
        let server = HttpServer::new(move || App::new().configure(|cfg| app_state.configure(cfg)))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            stand_in,
            api_url: format!("http://127.0.0.1:{port}/v1"),
            port,
            handle,
        })
    }

    /// Starts on a free loopback port.
    pub fn spawn(config: StandInConfig) -> std::io::Result<Self> {
        Self::start(TcpListener::bind("127.0.0.1:0")?, config)
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }
}
