//! A local stand-in for Whereby's REST API, for tests and the local run (the real
//! API cannot be reached from here).
//!
//! It serves `POST/GET /v1/meetings` and `GET/DELETE /v1/meetings/{id}` as the
//! official OpenAPI spec describes them: bearer check (401), request bodies
//! validated against the spec (400; the spec lists no 400 for `/meetings`, so the
//! body `{"error": "..."}` is our choice), numeric-string meeting ids, room names
//! `/<prefix><uuid>`, `hostRoomUrl` only when `fields` asks for it, idempotent
//! deletes (204 for unknown ids too). Faults (429 with `Retry-After`, 5xx, delays)
//! can be queued so a client's retry paths are exercised, and every API request is
//! recorded for inspection. The control routes live under `/_stand-in/`.
//!
//! It also sends webhooks like Whereby (see [`webhooks`]): participants join and
//! leave its meetings through `POST /_stand-in/meetings/{id}/join|leave`, and
//! `POST /_stand-in/webhooks/replay` sends everything again, duplicated and
//! shuffled on request.

pub mod recordings;
pub mod spec;
pub mod theme;
pub mod webhooks;

use std::{
    collections::{BTreeMap, VecDeque},
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, http::header, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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

/// A queued fault, applied to the next API request(s).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fault {
    /// Answer with this status instead of serving the request (e.g. 429, 503).
    #[serde(default)]
    pub status: Option<u16>,
    /// With 429: the `Retry-After` header, in seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Wait this long before answering (to exercise client timeouts).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// How many requests this fault applies to.
    #[serde(default = "one")]
    pub times: u32,
}

const fn one() -> u32 {
    1
}

/// One API request as the stand-in received it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredMeeting {
    meeting_id: String,
    room_name: String,
    room_url: String,
    start_date: String,
    end_date: String,
    host_room_url: String,
    viewer_room_url: String,
    request: Value,
    #[serde(skip)]
    clients: Vec<webhooks::Client>,
    #[serde(skip)]
    session: Option<String>,
    #[serde(skip)]
    session_started: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct State {
    meetings: Mutex<BTreeMap<u64, StoredMeeting>>,
    faults: Mutex<VecDeque<Fault>>,
    requests: Mutex<Vec<RecordedRequest>>,
    next_id: AtomicU64,
    /// Every webhook body sent, for replays.
    sent: Mutex<Vec<Vec<u8>>>,
    /// Themes by Whereby room name (with its leading `/`).
    themes: Mutex<BTreeMap<String, theme::Theme>>,
}

/// Shared state plus config; cheap to clone.
#[derive(Clone)]
pub struct StandIn {
    config: Arc<StandInConfig>,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

    pub fn push_fault(&self, fault: Fault) {
        lock(&self.state.faults).push_back(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// Every API request received so far (control routes excluded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// How many meetings exist (created and not deleted).
    /// What a room's theme was set to (`room_name` with its leading `/`).
    pub fn theme(&self, room_name: &str) -> Option<theme::Theme> {
        lock(&self.state.themes).get(room_name).cloned()
    }

    pub fn meeting_count(&self) -> usize {
        lock(&self.state.meetings).len()
    }

    fn take_fault(&self) -> Option<Fault> {
        let mut faults = lock(&self.state.faults);
        let front = faults.front_mut()?;
        let fault = front.clone();
        front.times = front.times.saturating_sub(1);
        if front.times == 0 {
            faults.pop_front();
        }
        Some(fault)
    }

    /// Registers the API and control routes on an actix `ServiceConfig`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            // Theme images: Whereby recommends at most 600 kB.
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .route("/v1/meetings", web::post().to(create_meeting))
            .route("/v1/meetings", web::get().to(list_meetings))
            .route("/v1/meetings/{id}", web::get().to(get_meeting))
            .route("/v1/meetings/{id}", web::delete().to(delete_meeting))
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
            .route("/_stand-in/faults", web::post().to(post_fault))
            .route("/_stand-in/faults", web::delete().to(delete_faults))
            .route("/_stand-in/requests", web::get().to(get_requests))
            .route("/_stand-in/meetings/{id}/join", web::post().to(join))
            .route("/_stand-in/meetings/{id}/leave", web::post().to(leave))
            .route("/_stand-in/webhooks/replay", web::post().to(replay));
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

fn error(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// Bearer check, request log and queued faults, in the order Whereby would apply
/// them: an unauthenticated request is refused before anything else.
async fn gate(s: &StandIn, req: &HttpRequest, body: Option<Value>) -> Option<HttpResponse> {
    let expected = format!("Bearer {}", s.config.api_key);
    let authorised = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorised {
        return Some(error(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "Access token is missing or invalid",
        ));
    }
    lock(&s.state.requests).push(RecordedRequest {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(String::new, ToString::to_string),
        body,
    });
    let fault = s.take_fault()?;
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = fault
        .status
        .and_then(|c| actix_web::http::StatusCode::from_u16(c).ok())?;
    let mut res = HttpResponse::build(status);
    if status == actix_web::http::StatusCode::TOO_MANY_REQUESTS {
        let secs = fault.retry_after.unwrap_or(1);
        res.insert_header((header::RETRY_AFTER, secs.to_string()))
            .insert_header(("X-RateLimit-Limit", "1000"))
            .insert_header(("X-RateLimit-Remaining", "0"));
        return Some(res.json(json!({
            "error": "Rate limit active for throttle key: organization:1",
            "data": {"msLeft": secs * 1000}
        })));
    }
    Some(res.json(json!({"error": "injected fault"})))
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn render(m: &StoredMeeting, fields: &[&str]) -> Value {
    let mut out = json!({
        "meetingId": m.meeting_id,
        "roomName": m.room_name,
        "roomUrl": m.room_url,
        "startDate": m.start_date,
        "endDate": m.end_date,
    });
    if fields.contains(&"hostRoomUrl") {
        out["hostRoomUrl"] = json!(m.host_room_url);
    }
    if fields.contains(&"viewerRoomUrl") {
        out["viewerRoomUrl"] = json!(m.viewer_room_url);
    }
    out
}

async fn create_meeting(s: web::Data<StandIn>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(res) = gate(&s, &req, parsed.clone()).await {
        return res;
    }
    let Some(value) = parsed else {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "body is not valid JSON",
        );
    };
    let schema = spec::request_schema("/meetings", "post").unwrap_or(&Value::Null);
    let mut problems = spec::validate(schema, &value);
    let end_date = value
        .get("endDate")
        .and_then(Value::as_str)
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.with_timezone(&Utc));
    if let Some(end) = end_date
        && end < now() - chrono::Duration::seconds(5)
    {
        problems.push("body.endDate: must be now or later".to_owned());
    }
    let Some(end) = end_date.filter(|_| problems.is_empty()) else {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            &problems.join("; "),
        );
    };
    // "The string should be lowercase, and spaces will be automatically removed."
    let prefix: String = value
        .get("roomNamePrefix")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let id = s.state.next_id.fetch_add(1, Ordering::Relaxed);
    let room_name = format!("/{prefix}{}", uuid::Uuid::new_v4());
    let room_url = format!("https://{}.whereby.com{room_name}", s.config.subdomain);
    let meeting = StoredMeeting {
        meeting_id: id.to_string(),
        host_room_url: format!("{room_url}?roomKey={}", uuid::Uuid::new_v4().simple()),
        viewer_room_url: format!("{room_url}?roomKey={}", uuid::Uuid::new_v4().simple()),
        room_name,
        room_url,
        start_date: iso(now()),
        end_date: iso(end),
        request: value.clone(),
        clients: Vec::new(),
        session: None,
        session_started: None,
    };
    let fields: Vec<&str> = value
        .get("fields")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let out = render(&meeting, &fields);
    lock(&s.state.meetings).insert(id, meeting);
    HttpResponse::Created().json(out)
}

fn query_fields(req: &HttpRequest) -> Vec<String> {
    web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("fields").cloned())
        .map(|f| f.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

async fn get_meeting(
    s: web::Data<StandIn>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(res) = gate(&s, &req, None).await {
        return res;
    }
    let fields = query_fields(&req);
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let meetings = lock(&s.state.meetings);
    match id.parse::<u64>().ok().and_then(|id| meetings.get(&id)) {
        Some(m) => HttpResponse::Ok().json(render(m, &fields)),
        None => error(actix_web::http::StatusCode::NOT_FOUND, "Meeting not found"),
    }
}

async fn delete_meeting(
    s: web::Data<StandIn>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(res) = gate(&s, &req, None).await {
        return res;
    }
    if let Ok(id) = id.parse::<u64>() {
        lock(&s.state.meetings).remove(&id);
    }
    HttpResponse::NoContent().finish()
}

async fn list_meetings(s: web::Data<StandIn>, req: HttpRequest) -> HttpResponse {
    if let Some(res) = gate(&s, &req, None).await {
        return res;
    }
    let query = web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "limit must be between 1 and 100",
            );
        }
    };
    let start: u64 = query
        .get("cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let fields = query_fields(&req);
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let meetings = lock(&s.state.meetings);
    let page: Vec<(&u64, &StoredMeeting)> = meetings.range(start..).take(limit + 1).collect();
    let cursor = page.get(limit).map(|(id, _)| id.to_string());
    let results: Vec<Value> = page
        .iter()
        .take(limit)
        .map(|(_, m)| render(m, &fields))
        .collect();
    HttpResponse::Ok().json(json!({ "results": results, "cursor": cursor }))
}

async fn post_fault(s: web::Data<StandIn>, fault: web::Json<Fault>) -> HttpResponse {
    s.push_fault(fault.into_inner());
    HttpResponse::NoContent().finish()
}

async fn delete_faults(s: web::Data<StandIn>) -> HttpResponse {
    s.clear_faults();
    HttpResponse::NoContent().finish()
}

async fn get_requests(s: web::Data<StandIn>) -> HttpResponse {
    HttpResponse::Ok().json(s.requests())
}

#[derive(Debug, Deserialize)]
struct JoinRequest {
    display_name: String,
    #[serde(default)]
    role_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LeaveRequest {
    participant_id: String,
}

#[derive(Debug, Default, Deserialize)]
struct ReplayRequest {
    /// Send every event twice.
    #[serde(default)]
    duplicates: bool,
    /// In random order.
    #[serde(default)]
    shuffle: bool,
}

impl StandIn {
    /// Builds the events of a join or leave under the state lock, then sends them
    /// (in order) outside it.
    async fn send_events(
        &self,
        events: Vec<Value>,
    ) -> Result<Vec<webhooks::Delivery>, HttpResponse> {
        let Some(target) = self.config.webhooks.clone() else {
            return Err(error(
                actix_web::http::StatusCode::CONFLICT,
                "no webhook target configured",
            ));
        };
        let http = reqwest::Client::new();
        let mut deliveries = Vec::new();
        for event in events {
            // Compact JSON, as Whereby sends it.
            let body = serde_json::to_vec(&event).unwrap_or_default();
            lock(&self.state.sent).push(body.clone());
            deliveries.push(webhooks::deliver(&http, &target, &body).await);
        }
        Ok(deliveries)
    }
}

async fn join(
    s: web::Data<StandIn>,
    id: web::Path<String>,
    body: web::Json<JoinRequest>,
) -> HttpResponse {
    let events = {
        let mut meetings = lock(&s.state.meetings);
        let Some(m) = id.parse::<u64>().ok().and_then(|id| meetings.get_mut(&id)) else {
            return error(actix_web::http::StatusCode::NOT_FOUND, "Meeting not found");
        };
        let who = webhooks::Client {
            participant_id: uuid::Uuid::new_v4().to_string(),
            display_name: body.display_name.clone(),
            role_name: body
                .role_name
                .clone()
                .unwrap_or_else(|| "visitor".to_owned()),
        };
        m.clients.push(who.clone());
        let people = m
            .clients
            .iter()
            .filter(|c| c.role_name != "recorder")
            .count();
        let mut events = Vec::new();
        if people >= 2 && m.session.is_none() {
            let session = uuid::Uuid::new_v4().to_string();
            m.session = Some(session.clone());
            m.session_started = Some(now());
            events.push(webhooks::envelope(
                "room.session.started",
                webhooks::session_data(&m.meeting_id, &m.room_name, &session),
            ));
        }
        let data = webhooks::client_data(
            &m.meeting_id,
            &m.room_name,
            m.session.as_deref(),
            &who,
            &m.clients,
        );
        events.insert(0, webhooks::envelope("room.client.joined", data));
        (events, who.participant_id)
    };
    match s.send_events(events.0).await {
        Ok(deliveries) => {
            HttpResponse::Ok().json(json!({"participant_id": events.1, "deliveries": deliveries}))
        }
        Err(res) => res,
    }
}

async fn leave(
    s: web::Data<StandIn>,
    id: web::Path<String>,
    body: web::Json<LeaveRequest>,
) -> HttpResponse {
    let events = {
        let mut meetings = lock(&s.state.meetings);
        let Some(m) = id.parse::<u64>().ok().and_then(|id| meetings.get_mut(&id)) else {
            return error(actix_web::http::StatusCode::NOT_FOUND, "Meeting not found");
        };
        let Some(pos) = m
            .clients
            .iter()
            .position(|c| c.participant_id == body.participant_id)
        else {
            return error(
                actix_web::http::StatusCode::NOT_FOUND,
                "no such participant in the meeting",
            );
        };
        let who = m.clients.remove(pos);
        let data = webhooks::client_data(
            &m.meeting_id,
            &m.room_name,
            m.session.as_deref(),
            &who,
            &m.clients,
        );
        let mut events = vec![webhooks::envelope("room.client.left", data)];
        let people = m
            .clients
            .iter()
            .filter(|c| c.role_name != "recorder")
            .count();
        let mut recording = None;
        if people < 2
            && let Some(session) = m.session.take()
        {
            events.push(webhooks::envelope(
                "room.session.ended",
                webhooks::session_data(&m.meeting_id, &m.room_name, &session),
            ));
            recording = recordings::job_for(&m.request, &m.room_name, m.session_started.take());
        }
        (events, recording)
    };
    let (events, recording) = events;
    let mut deliveries = match s.send_events(events).await {
        Ok(deliveries) => deliveries,
        Err(res) => return res,
    };
    // A cloud-recorded session that ended: the recorder uploads the file, then
    // Whereby announces it.
    let mut uploaded = None;
    if let (Some(job), Some(endpoint)) = (recording, s.config.s3_endpoint.clone()) {
        match recordings::upload(&endpoint, &job).await {
            Ok((key, file_name)) => {
                let finished = webhooks::envelope(
                    "recording.finished",
                    json!({"recordingId": uuid::Uuid::new_v4().to_string(), "roomName": job.room_name,
                           "filename": file_name, "status": "completed"}),
                );
                if let Ok(more) = s.send_events(vec![finished]).await {
                    deliveries.extend(more);
                }
                uploaded = Some(key);
            }
            Err(e) => tracing::warn!(error = %e, "recording upload failed"),
        }
    }
    HttpResponse::Ok().json(json!({"deliveries": deliveries, "recording_key": uploaded}))
}

async fn replay(s: web::Data<StandIn>, body: Option<web::Json<ReplayRequest>>) -> HttpResponse {
    let options = body.map(web::Json::into_inner).unwrap_or_default();
    let mut bodies = lock(&s.state.sent).clone();
    if options.duplicates {
        bodies.extend(bodies.clone());
    }
    if options.shuffle {
        // Deterministic enough for a stand-in: sort by a random key.
        let mut keyed: Vec<(u128, Vec<u8>)> = bodies
            .into_iter()
            .map(|b| (uuid::Uuid::new_v4().as_u128(), b))
            .collect();
        keyed.sort_by_key(|(k, _)| *k);
        bodies = keyed.into_iter().map(|(_, b)| b).collect();
    }
    let Some(target) = s.config.webhooks.clone() else {
        return error(
            actix_web::http::StatusCode::CONFLICT,
            "no webhook target configured",
        );
    };
    let http = reqwest::Client::new();
    let mut deliveries = Vec::new();
    for body in bodies {
        deliveries.push(webhooks::deliver(&http, &target, &body).await);
    }
    HttpResponse::Ok().json(json!({"deliveries": deliveries}))
}
