//! Sending webhooks like Whereby: compact JSON, signed `Whereby-Signature:
//! t=<secs>,v1=<hex>` over the exact bytes sent, retried only on 5xx or a
//! 5-second timeout, at most twice, with a short backoff. Participants join and
//! leave meetings the stand-in created; a session starts when two people are in
//! the room and ends when fewer than two remain. Everything sent can be sent again,
//! duplicated and shuffled, to exercise a receiver's idempotency.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
