//! The stand-in over HTTP, as a Whereby client sees it.

use serde_json::{Value, json};
use whereby_stand_in::{Fault, StandInConfig, StandInServer};

const KEY: &str = "k-123";

async fn start() -> (StandInServer, reqwest::Client) {
    let server = StandInServer::spawn(StandInConfig {
        api_key: KEY.to_owned(),
        subdomain: "acme".to_owned(),
        webhooks: None,
        s3_endpoint: None,
    })
    .expect("start");
    (server, reqwest::Client::new())
}

fn end_date() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

#[tokio::test]
async fn meetings_are_created_read_listed_and_deleted_as_the_spec_says() {
    let (s, http) = start().await;
    let url = format!("{}/meetings", s.api_url);
    let res = http
        .post(&url)
        .json(&json!({"endDate": end_date()}))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 401, "no bearer");
    let res = http
        .post(&url)
        .bearer_auth("wrong")
        .json(&json!({"endDate": end_date()}))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 401, "wrong bearer");

    for bad in [
        json!({}),
        json!({"endDate": "tomorrow"}),
        json!({"endDate": "2001-01-01T00:00:00Z"}),
        json!({"endDate": end_date(), "roomMode": "big"}),
        json!({"endDate": end_date(), "colour": 1}),
    ] {
        let res = http
            .post(&url)
            .bearer_auth(KEY)
            .json(&bad)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status().as_u16(), 400, "{bad}");
        let body: Value = res.json().await.expect("json");
        assert!(body["error"].is_string());
    }
    assert_eq!(s.stand_in.meeting_count(), 0);

    let plain: Value = http.post(&url).bearer_auth(KEY)
        .json(&json!({"endDate": end_date(), "roomNamePrefix": "Team A-", "startDate": "2020-01-01T00:00:00Z"}))
        .send().await.expect("send").json().await.expect("json");
    assert!(
        plain["meetingId"]
            .as_str()
            .expect("id")
            .parse::<u64>()
            .is_ok()
    );
    let room = plain["roomName"].as_str().expect("roomName");
    assert!(
        room.starts_with("/teama-") && room.len() == "/teama-".len() + 36,
        "{room}"
    );
    assert_eq!(plain["roomUrl"], format!("https://acme.whereby.com{room}"));
    assert!(
        plain.get("hostRoomUrl").is_none(),
        "only when asked for in fields"
    );

    let hosted: Value = http
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"endDate": end_date(), "fields": ["hostRoomUrl"]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(
        hosted["hostRoomUrl"]
            .as_str()
            .expect("host")
            .contains("?roomKey=")
    );

    let id = plain["meetingId"].as_str().expect("id");
    let got = http
        .get(format!("{url}/{id}?fields=hostRoomUrl"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(got.status().as_u16(), 200);
    assert!(got.json::<Value>().await.expect("json")["hostRoomUrl"].is_string());

    let page: Value = http
        .get(format!("{url}?limit=1"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(page["results"].as_array().expect("results").len(), 1);
    let cursor = page["cursor"].as_str().expect("more pages");
    let page2: Value = http
        .get(format!("{url}?limit=1&cursor={cursor}"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(page2["results"].as_array().expect("results").len(), 1);
    assert!(page2["cursor"].is_null());

    for _ in 0..2 {
        let del = http
            .delete(format!("{url}/{id}"))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("send");
        assert_eq!(del.status().as_u16(), 204, "idempotent delete");
    }
    let gone = http
        .get(format!("{url}/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(gone.status().as_u16(), 404);
}

#[tokio::test]
async fn queued_faults_answer_in_whereby_shape_then_clear() {
    let (s, http) = start().await;
    let url = format!("{}/meetings", s.api_url);
    let control = format!("http://127.0.0.1:{}/_stand-in/faults", s.port);
    let res = http
        .post(&control)
        .json(&Fault {
            status: Some(429),
            retry_after: Some(7),
            times: 2,
            ..Default::default()
        })
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 204);
    for _ in 0..2 {
        let res = http.get(&url).bearer_auth(KEY).send().await.expect("send");
        assert_eq!(res.status().as_u16(), 429);
        assert_eq!(res.headers()["retry-after"], "7");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["data"]["msLeft"], 7000);
    }
    assert_eq!(
        http.get(&url)
            .bearer_auth(KEY)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    s.stand_in.push_fault(Fault {
        status: Some(502),
        times: 5,
        ..Default::default()
    });
    http.delete(&control).send().await.expect("send");
    assert_eq!(
        http.get(&url)
            .bearer_auth(KEY)
            .send()
            .await
            .expect("send")
            .status()
            .as_u16(),
        200
    );
    let log: Value = http
        .get(format!("http://127.0.0.1:{}/_stand-in/requests", s.port))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(log.as_array().expect("log").len(), 4);
}

/// A receiver that answers a fixed status and counts requests.
async fn receiver(status: u16) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        App::new().default_service(web::to(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
                    .finish()
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/hook"), hits)
}

#[tokio::test]
async fn webhooks_are_retried_only_on_5xx_and_at_most_twice() {
    for (status, attempts) in [(503u16, 3usize), (500, 3), (401, 1), (200, 1)] {
        let (url, hits) = receiver(status).await;
        let target = whereby_stand_in::webhooks::WebhookTarget {
            url,
            secret: "s".to_owned(),
        };
        let body = serde_json::to_vec(&whereby_stand_in::webhooks::envelope(
            "room.session.started",
            json!({"meetingId": "1"}),
        ))
        .expect("json");
        let delivery =
            whereby_stand_in::webhooks::deliver(&reqwest::Client::new(), &target, &body).await;
        assert_eq!(delivery.status, Some(status));
        assert_eq!(delivery.attempts as usize, attempts, "status {status}");
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), attempts);
    }
}

#[tokio::test]
async fn sent_webhooks_are_compact_and_verifiably_signed() {
    let body = serde_json::to_vec(&whereby_stand_in::webhooks::envelope(
        "room.client.joined",
        json!({"displayName": "Zoë"}),
    ))
    .expect("json");
    let text = std::str::from_utf8(&body).expect("utf-8");
    assert!(
        !text.contains(": ") && !text.contains(", ") && !text.contains('\n'),
        "compact JSON: {text}"
    );
    assert!(
        text.contains("Zoë"),
        "non-ASCII sent as UTF-8, not escaped: {text}"
    );
    let t = chrono::Utc::now().timestamp();
    let header = whereby::webhook::sign("secret", t, &body);
    assert!(whereby::webhook::verify(Some(&header), &body, &[b"secret"], t, 300).is_ok());
}
