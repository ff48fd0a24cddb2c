//! Sending webhooks like Whereby: compact JSON, signed `Whereby-Signature:
//! t=<secs>,v1=<hex>` over the exact bytes sent, retried only on 5xx or a
//! 5-second timeout, at most twice, with a short backoff. Participants join and
//! leave meetings the stand-in created (`POST /_stand-in/meetings/{id}/join|leave`);
//! a session starts when two people are in the room and ends when fewer than two
//! remain. Everything sent can be sent again (`POST /_stand-in/webhooks/replay`),
//! duplicated and shuffled, to exercise a receiver's idempotency.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    api::{error, now},
    recordings,
    server::{StandIn, lock},
};

/// Where and how webhooks are sent.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

/// One participant in a stand-in meeting.
#[derive(Debug, Clone)]
pub struct Client {
    pub participant_id: String,
    pub display_name: String,
    pub role_name: String,
}

/// What one webhook delivery came to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    /// The final HTTP status, or none when every attempt timed out or failed.
    pub status: Option<u16>,
    pub attempts: u32,
}

/// Whereby's event id form: 64 hex characters.
fn event_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub fn envelope(event_type: &str, data: Value) -> Value {
    json!({
        "id": event_id(),
        "apiVersion": "1.0",
        "createdAt": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "type": event_type,
        "data": data,
    })
}

/// The `data` of a joined/left event after the change, given who is in the room.
pub fn client_data(
    meeting_id: &str,
    room_name: &str,
    session: Option<&str>,
    who: &Client,
    clients: &[Client],
) -> Value {
    let mut by_role = serde_json::Map::new();
    for c in clients {
        let n = by_role
            .get(&c.role_name)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        by_role.insert(c.role_name.clone(), json!(n + 1));
    }
    json!({
        "meetingId": meeting_id,
        "roomName": room_name,
        "subdomain": "stand-in",
        "roomSessionId": session,
        "participantId": who.participant_id,
        "displayName": who.display_name,
        "roleName": who.role_name,
        "numClients": clients.len(),
        "numClientsByRoleName": by_role,
        "isDialIn": false,
        "metadata": null,
        "externalId": null,
    })
}

pub fn session_data(meeting_id: &str, room_name: &str, session: &str) -> Value {
    json!({"meetingId": meeting_id, "roomName": room_name, "subdomain": "stand-in", "roomSessionId": session})
}

/// Sends one event (already serialised) with Whereby's retry rule.
pub async fn deliver(http: &reqwest::Client, target: &WebhookTarget, body: &[u8]) -> Delivery {
    let parsed: Value = serde_json::from_slice(body).unwrap_or_default();
    let mut delivery = Delivery {
        event_id: parsed["id"].as_str().unwrap_or_default().to_owned(),
        event_type: parsed["type"].as_str().unwrap_or_default().to_owned(),
        status: None,
        attempts: 0,
    };
    // One attempt and at most two retries.
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        delivery.attempts = attempt + 1;
        let signature = whereby::webhook::sign(&target.secret, Utc::now().timestamp(), body);
        let sent = http
            .post(&target.url)
            .timeout(Duration::from_secs(5))
            .header("content-type", "application/json")
            .header(whereby::webhook::SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(res) => {
                let status = res.status().as_u16();
                delivery.status = Some(status);
                if status < 500 {
                    break;
                }
            }
            Err(e) => {
                delivery.status = None;
                tracing::warn!(error = %e, "webhook delivery failed");
            }
        }
    }
    delivery
}

#[derive(Debug, Deserialize)]
pub(crate) struct JoinRequest {
    display_name: String,
    #[serde(default)]
    role_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LeaveRequest {
    participant_id: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReplayRequest {
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
    async fn send_events(&self, events: Vec<Value>) -> Result<Vec<Delivery>, HttpResponse> {
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
            deliveries.push(deliver(&http, &target, &body).await);
        }
        Ok(deliveries)
    }
}

pub(crate) async fn join(
    s: web::Data<StandIn>,
    id: web::Path<String>,
    body: web::Json<JoinRequest>,
) -> HttpResponse {
    let events = {
        let mut meetings = lock(&s.state.meetings);
        let Some(m) = id.parse::<u64>().ok().and_then(|id| meetings.get_mut(&id)) else {
            return error(actix_web::http::StatusCode::NOT_FOUND, "Meeting not found");
        };
        let who = Client {
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
            events.push(envelope(
                "room.session.started",
                session_data(&m.meeting_id, &m.room_name, &session),
            ));
        }
        let data = client_data(
            &m.meeting_id,
            &m.room_name,
            m.session.as_deref(),
            &who,
            &m.clients,
        );
        events.insert(0, envelope("room.client.joined", data));
        (events, who.participant_id)
    };
    match s.send_events(events.0).await {
        Ok(deliveries) => {
            HttpResponse::Ok().json(json!({"participant_id": events.1, "deliveries": deliveries}))
        }
        Err(res) => res,
    }
}

pub(crate) async fn leave(
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
        let data = client_data(
            &m.meeting_id,
            &m.room_name,
            m.session.as_deref(),
            &who,
            &m.clients,
        );
        let mut events = vec![envelope("room.client.left", data)];
        let people = m
            .clients
            .iter()
            .filter(|c| c.role_name != "recorder")
            .count();
        let mut recording = None;
        if people < 2
            && let Some(session) = m.session.take()
        {
            events.push(envelope(
                "room.session.ended",
                session_data(&m.meeting_id, &m.room_name, &session),
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
                let finished = envelope(
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

pub(crate) async fn replay(
    s: web::Data<StandIn>,
    body: Option<web::Json<ReplayRequest>>,
) -> HttpResponse {
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
        deliveries.push(deliver(&http, &target, &body).await);
    }
    HttpResponse::Ok().json(json!({"deliveries": deliveries}))
}
