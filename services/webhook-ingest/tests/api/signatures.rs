//! The signature matrix: every rejection is 401 (or 413/400) with nothing queued.

use test_support::TestBroker;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_signature_is_refused_and_nothing_is_queued() {
    let ingest = spawn_ingest(TestBroker::new().await).await;
    let body = sample_event("evt-matrix");
    let t = now();
    let good = signed(SECRET, t, &body);
    let good_v1 = v1_of(&good);
    let wrong = signed("not-the-secret", t, &body);
    let mut one_byte = body.clone();
    let last = one_byte.len() - 2;
    one_byte[last] ^= 0x01;
    let pretty =
        serde_json::to_vec_pretty(&json(std::str::from_utf8(&body).expect("utf-8"))).expect("json");

    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("wrong secret", body.clone(), Some(wrong)),
        ("one byte changed", one_byte, Some(good.clone())),
        ("whitespace changed", pretty, Some(good.clone())),
        ("stale", body.clone(), Some(signed(SECRET, t - 302, &body))),
        ("future", body.clone(), Some(signed(SECRET, t + 302, &body))),
        ("missing header", body.clone(), None),
        ("empty header", body.clone(), Some(String::new())),
        ("garbage header", body.clone(), Some("nonsense".to_owned())),
        ("no v1", body.clone(), Some(format!("t={t}"))),
        ("no t", body.clone(), Some(format!("v1={good_v1}"))),
        (
            "non-integer t",
            body.clone(),
            Some(format!("t={t}.5,v1={good_v1}")),
        ),
        (
            "negative t",
            body.clone(),
            Some(format!("t=-{t},v1={good_v1}")),
        ),
        (
            "duplicated t",
            body.clone(),
            Some(format!("t={t},t={t},v1={good_v1}")),
        ),
        (
            "overflowing t",
            body.clone(),
            Some(format!("t=99999999999999999999999,v1={good_v1}")),
        ),
        (
            "truncated v1",
            body.clone(),
            Some(format!("t={t},v1={}", &good_v1[..63])),
        ),
        (
            "non-hex v1",
            body.clone(),
            Some(format!("t={t},v1={}", "zz".repeat(32))),
        ),
        (
            "v1 of another timestamp",
            body.clone(),
            Some(format!("t={},v1={good_v1}", t - 1)),
        ),
    ];
    for (case, body, header) in cases {
        let (status, text) = ingest.post(&body, header.as_deref()).await;
        assert_eq!(status, 401, "{case}: {text}");
        assert!(
            !text.contains(&good_v1) && !text.contains(SECRET),
            "{case} leaks: {text}"
        );
        assert_eq!(json(&text)["error"]["code"], "unauthorized", "{case}");
    }
    assert_eq!(ingest.queued().await, 0, "a rejection must enqueue nothing");

    // Oversized (declared and chunked alike) and non-JSON after a valid signature.
    let huge = vec![b' '; 70 * 1024];
    let (status, _) = ingest.post(&huge, Some(&signed(SECRET, t, &huge))).await;
    assert_eq!(status, 413);
    for (case, bad) in [
        ("not json", b"not json at all".to_vec()),
        (
            "no id",
            br#"{"type":"x","createdAt":"2030-01-01T00:00:00Z"}"#.to_vec(),
        ),
        (
            "bad createdAt",
            br#"{"id":"a","type":"x","createdAt":"yesterday"}"#.to_vec(),
        ),
        ("array", b"[]".to_vec()),
        (
            "a number the worker could not read",
            br#"{"id":"a","type":"x","createdAt":"2030-01-01T00:00:00Z","data":{"n":1e400}}"#
                .to_vec(),
        ),
    ] {
        let (status, text) = ingest.post(&bad, Some(&signed(SECRET, t, &bad))).await;
        assert_eq!(status, 400, "{case}: {text}");
    }
    assert_eq!(ingest.queued().await, 0);

    let metrics = ingest.metrics().await;
    assert!(
        metrics.contains("ingest_webhooks_rejected_total{reason=\"signature_mismatch\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("ingest_webhooks_rejected_total{reason=\"signature_stale\"} 2"));
    assert!(metrics.contains("ingest_webhooks_rejected_total{reason=\"too_large\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_signatures_are_accepted_including_rotation_and_several_v1_entries() {
    let ingest = spawn_ingest(TestBroker::new().await).await;
    let t = now();
    let cases: Vec<(&str, Vec<u8>, String)> = {
        let b1 = sample_event("ok-1");
        let b2 = sample_event("ok-2");
        let b3 = sample_event("ok-3");
        let b4 = sample_event("ok-4");
        let b5 = sample_event("ok-5");
        let several = format!(
            "t={t},v1={},v1={}",
            v1_of(&signed("wrong", t, &b3)),
            v1_of(&signed(SECRET, t, &b3))
        );
        vec![
            ("current secret", b1.clone(), signed(SECRET, t, &b1)),
            (
                "previous secret during rotation",
                b2.clone(),
                signed(OLD_SECRET, t, &b2),
            ),
            ("several v1 entries, one matching", b3, several),
            (
                "inside the tolerance, past",
                b4.clone(),
                signed(SECRET, t - 290, &b4),
            ),
            (
                "inside the tolerance, future, with spaces",
                b5.clone(),
                signed(SECRET, t + 290, &b5).replace(',', ", "),
            ),
        ]
    };
    for (case, body, header) in &cases {
        let (status, text) = ingest.post(body, Some(header)).await;
        assert_eq!(status, 200, "{case}: {text}");
    }
    // An unknown type is accepted too: a new Whereby event must not get us disabled.
    let unknown = br#"{"id":"ok-6","apiVersion":"1.0","createdAt":"2030-01-01T00:00:00Z","type":"brand.new.type","data":{}}"#;
    let (status, _) = ingest
        .post(unknown, Some(&signed(SECRET, t, unknown)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(ingest.queued().await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuffed_signature_header_is_refused_without_a_mac() {
    let ingest = spawn_ingest(TestBroker::new().await).await;
    let body = vec![b' '; 60 * 1024];
    let t = now();
    let good = signed(SECRET, t, &body);
    let entry = format!(",v1={}", v1_of(&good));
    // 1,200 entries (the right one among them): over the 1 KiB header cap.
    let stuffed = format!("t={t}{}", entry.repeat(1200));
    let (status, _) = ingest.post(&body, Some(&stuffed)).await;
    assert_eq!(status, 401);
    // Nine entries fit in 1 KiB but are over the cap of eight.
    let nine = format!("t={t}{}", entry.repeat(9));
    let (status, _) = ingest.post(&body, Some(&nine)).await;
    assert_eq!(status, 401);
    // Eight are fine.
    let small = sample_event("evt-eight");
    let good = signed(SECRET, t, &small);
    let eight = format!("t={t}{}", format!(",v1={}", v1_of(&good)).repeat(8));
    let (status, text) = ingest.post(&small, Some(&eight)).await;
    assert_eq!(status, 200, "{text}");
    let metrics = ingest.metrics().await;
    assert!(
        metrics.contains("ingest_webhooks_rejected_total{reason=\"signature_malformed\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_http_methods_do_not_grow_the_metrics() {
    let ingest = spawn_ingest(TestBroker::new().await).await;
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("QZX{i}").as_bytes()).expect("method");
        let _ = ingest
            .http
            .request(method, format!("{}/v1/whereby", ingest.address))
            .send()
            .await;
    }
    let metrics = ingest.metrics().await;
    assert!(!metrics.contains("QZX"), "a label per invented method");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_verifications_are_limited_per_address_and_signed_events_never_are() {
    let broker = TestBroker::new().await;
    let mut s = settings(&broker, SECRET);
    s.http.webhook_client_address_header = Some("X-Forwarded-For".to_owned());
    s.http.webhook_failure_burst = 5;
    s.http.webhook_failure_rate_per_second = 0.01;
    let ingest = spawn_with(broker, s, true).await;
    let post_from = async |address: &str, body: &[u8], signature: &str| {
        ingest
            .http
            .post(format!("{}/v1/whereby", ingest.address))
            .header("content-type", "application/json")
            // A client may forge the left; the proxy appends the real address.
            .header("X-Forwarded-For", format!("6.6.6.6, {address}"))
            .header("Whereby-Signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    };
    let body = sample_event("evt-limited");
    let t = now();
    let forged = signed("not-the-secret", t, &body);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(post_from("203.0.113.7", &body, &forged).await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    // A malformed header from the limited address: 429 too, nothing read.
    assert_eq!(post_from("203.0.113.7", &body, "nonsense").await, 429);
    // A large body with a fresh forged header: refused before it is read.
    let large = vec![b' '; 40 * 1024];
    assert_eq!(
        post_from("203.0.113.7", &large, &signed("x", t, &large)).await,
        429
    );
    // A correctly signed event from the same address is accepted.
    assert_eq!(
        post_from("203.0.113.7", &body, &signed(SECRET, t, &body)).await,
        200
    );
    // Another address is not limited.
    assert_eq!(post_from("203.0.113.8", &body, &forged).await, 401);
    let other = sample_event("evt-other");
    assert_eq!(
        post_from("203.0.113.8", &other, &signed(SECRET, t, &other)).await,
        200
    );
    assert_eq!(ingest.queued().await, 2);
    let metrics = ingest.metrics().await;
    assert!(
        metrics.contains("ingest_webhooks_rejected_total{reason=\"rate_limited\"} 5"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_408_and_holds_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = TestBroker::new().await;
    let mut s = settings(&broker, SECRET);
    s.http.webhook_body_timeout_seconds = 1;
    let ingest = spawn_with(broker, s, true).await;
    let addr = ingest.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // A fresh, well-formed header (so the body is read), then a body that stalls.
    let signature = signed(SECRET, now(), b"x");
    let head = format!(
        "POST /v1/whereby HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nWhereby-Signature: {signature}\r\n\r\n{{\"id\":"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered within the deadline")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(ingest.queued().await, 0);
    let metrics = ingest.metrics().await;
    assert!(
        metrics.contains("ingest_webhooks_rejected_total{reason=\"too_slow\"} 1"),
        "{metrics}"
    );
}
