//! Sending signed webhooks like Whereby: compact JSON, `Whereby-Signature` over the
//! exact bytes, a 5-second timeout, and (for the fault suite) Whereby's retry rule.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

/// A `room.client.joined` for a distinct participant: one event, one effect.
pub fn joined(meeting: &str, run: &str, i: usize) -> (String, Vec<u8>) {
    let id = format!("{run}-{i:07}");
    let participant = format!("p-{id}");
    client_event(meeting, id, &participant, true)
}

/// A join or leave of `participant` in `meeting`, with the event id `id`.
pub fn client_event(
    meeting: &str,
    id: String,
    participant: &str,
    joined: bool,
) -> (String, Vec<u8>) {
    let body = serde_json::to_vec(&json!({
        "id": id, "apiVersion": "1.0",
        "createdAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "type": if joined { "room.client.joined" } else { "room.client.left" },
        "data": {"meetingId": meeting, "roomName": "/bench", "subdomain": "bench", "roomSessionId": "s",
                 "participantId": participant, "displayName": "Bench", "roleName": "visitor",
                 "numClients": 1, "numClientsByRoleName": {"visitor": 1}, "isDialIn": false,
                 "metadata": null, "externalId": null}
    }))
    .unwrap_or_default();
    (id, body)
}

pub fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap_or_default()
}

/// One POST; `Ok(status)` or `Err` for no answer (refused, reset, timed out).
pub async fn post(http: &reqwest::Client, url: &str, secret: &str, body: &[u8]) -> Result<u16, ()> {
    let signature = whereby::webhook::sign(secret, chrono::Utc::now().timestamp(), body);
    http.post(url)
        .header("content-type", "application/json")
        .header(whereby::webhook::SIGNATURE_HEADER, signature)
        .body(body.to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(drop)
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub id: String,
    pub accepted: bool,
    pub attempts: u32,
    /// When the 200 came (for the end-to-end lag).
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One answer (or its absence) an attempt got, at a moment since sending began.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub at: Duration,
    pub ok: bool,
}

/// Whereby's rule: retry only on 5xx or no answer, at most `retries` times, 0.5 s
/// then 1 s apart. Attempt `n` goes to `urls[(first + n) % len]`: with several
/// ingest replicas, a retry may land on another one, as behind a load balancer.
/// `answered` hears each attempt's outcome.
#[allow(clippy::too_many_arguments, reason = "one event and where it goes")]
pub async fn send_like_whereby(
    http: &reqwest::Client,
    urls: &[String],
    first: usize,
    secret: &str,
    id: String,
    body: Vec<u8>,
    retries: u32,
    mut answered: impl FnMut(bool),
) -> Sent {
    let mut attempts = 0u32;
    loop {
        let Some(url) = urls.get((first + attempts as usize) % urls.len().max(1)) else {
            return Sent {
                id,
                accepted: false,
                attempts,
                accepted_at: None,
            };
        };
        attempts += 1;
        let status = post(http, url, secret, &body).await;
        let ok = matches!(status, Ok(s) if (200..300).contains(&s));
        answered(ok);
        let retryable = !matches!(status, Ok(s) if s < 500);
        if ok || !retryable || attempts > retries {
            return Sent {
                id,
                accepted: ok,
                attempts,
                accepted_at: ok.then(chrono::Utc::now),
            };
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempts))).await;
    }
}

/// Open loop: event `i` starts at `i / rate` seconds, whatever the answers before it.
pub async fn paced(
    url: &str,
    secret: &str,
    events: Vec<(String, Vec<u8>)>,
    rate: f64,
    retries: u32,
) -> Vec<Sent> {
    paced_over(vec![url.to_owned()], secret, events, rate, retries)
        .await
        .0
}

/// [`paced`] over several ingest replicas (event `i` first to `urls[i % n]`), with
/// every attempt's answer and when it came.
pub async fn paced_over(
    urls: Vec<String>,
    secret: &str,
    events: Vec<(String, Vec<u8>)>,
    rate: f64,
    retries: u32,
) -> (Vec<Sent>, Vec<Answer>) {
    let http = client(256);
    let started = Instant::now();
    let urls: Arc<[String]> = urls.into();
    let secret: Arc<str> = secret.into();
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let mut tasks = Vec::with_capacity(events.len());
    for (i, (id, body)) in events.into_iter().enumerate() {
        let at = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let (http, urls, secret, answers) =
            (http.clone(), urls.clone(), secret.clone(), answers.clone());
        tasks.push(tokio::spawn(async move {
            let record = |ok| {
                if let Ok(mut a) = answers.lock() {
                    a.push(Answer {
                        at: started.elapsed(),
                        ok,
                    });
                }
            };
            send_like_whereby(&http, &urls, i, &secret, id, body, retries, record).await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(s) = t.await {
            out.push(s);
        }
    }
    let answers = answers.lock().map(|a| a.clone()).unwrap_or_default();
    (out, answers)
}

/// Open loop on one connection pool: event `i` is sent at `i / rate` seconds,
/// whatever happened to the ones before (as Whereby sends them), once. Returns, per
/// event, the time from its scheduled send to its answer (µs), and what became of it.
pub async fn paced_from_schedule(
    http: &reqwest::Client,
    url: &Arc<str>,
    secret: &Arc<str>,
    events: Vec<(String, Vec<u8>)>,
    rate: f64,
) -> Vec<(u64, Sent)> {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(events.len());
    for (i, (id, body)) in events.into_iter().enumerate() {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let (h, u, s) = (http.clone(), url.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let ok = matches!(post(&h, &u, &s, &body).await, Ok(200));
            let from_schedule = at.elapsed().as_micros() as u64;
            let sent = Sent {
                id,
                accepted: ok,
                attempts: 1,
                accepted_at: ok.then(chrono::Utc::now),
            };
            (from_schedule, sent)
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(r) = t.await {
            out.push(r);
        }
    }
    out
}
