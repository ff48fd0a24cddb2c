//! What is published, and what happens when it cannot be.

use std::time::Duration;

use futures_util::StreamExt;
use messaging::{
    HEADER_EVENT_TYPE, HEADER_REQUEST_ID, WebhookEnvelope, header_str,
    lapin::{
        options::{BasicAckOptions, BasicConsumeOptions, QueueDeleteOptions},
        types::FieldTable,
    },
};
use test_support::{PrivateRabbit, TestBroker};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_webhook_is_a_persistent_message_in_the_documented_contract() {
    let ingest = spawn_ingest(TestBroker::new().await).await;
    let body = sample_event("evt-contract");
    let res = ingest
        .http
        .post(format!("{}/v1/whereby", ingest.address))
        .header("Whereby-Signature", signed(SECRET, now(), &body))
        .header("X-Request-Id", "req-abc-123")
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["x-request-id"], "req-abc-123");

    let (conn, channel) = ingest.broker.channel().await;
    let mut consumer = channel
        .basic_consume(
            ingest.broker.topology.worker_queue().as_str().into(),
            "t".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("a message")
        .expect("stream")
        .expect("delivery");
    let p = &delivery.properties;
    assert_eq!(
        p.message_id().as_ref().map(|s| s.as_str()),
        Some("evt-contract")
    );
    assert_eq!(*p.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        header_str(p.headers().as_ref(), HEADER_REQUEST_ID),
        Some("req-abc-123")
    );
    assert_eq!(
        header_str(p.headers().as_ref(), HEADER_EVENT_TYPE),
        Some("room.client.joined")
    );
    assert_eq!(delivery.routing_key.as_str(), "whereby.room.client.joined");
    let envelope: WebhookEnvelope = serde_json::from_slice(&delivery.data).expect("envelope");
    assert_eq!(envelope.schema_version, 1);
    assert_eq!(envelope.request_id.as_deref(), Some("req-abc-123"));
    assert_eq!(
        envelope.event,
        json(std::str::from_utf8(&body).expect("utf-8"))
    );
    assert_eq!(envelope.event["data"]["displayName"], "Zoë");
    delivery.ack(BasicAckOptions::default()).await.expect("ack");
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_publish_is_a_503_not_a_silent_loss() {
    let ingest = spawn_ingest(TestBroker::new().await).await;
    let (conn, channel) = ingest.broker.channel().await;
    channel
        .queue_delete(
            ingest.broker.topology.worker_queue().as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .expect("delete worker queue");
    let _ = conn.close(200, "bye".into()).await;
    let body = sample_event("evt-unroutable");
    let (status, text) = ingest
        .post(&body, Some(&signed(SECRET, now(), &body)))
        .await;
    assert_eq!(status, 503, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_answers_503_then_recovers_and_loses_nothing_accepted() {
    let rabbit = PrivateRabbit::start();
    let broker = TestBroker::on(&rabbit.url()).await;
    let ingest = spawn_ingest(broker).await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..10 {
        let body = sample_event(&format!("before-{i}"));
        let (status, _) = ingest
            .post(&body, Some(&signed(SECRET, now(), &body)))
            .await;
        assert_eq!(status, 200);
        accepted.push(i);
    }
    rabbit.stop_app();
    ingest.wait_ready(false, Duration::from_secs(10)).await;
    for i in 0..5 {
        let body = sample_event(&format!("during-{i}"));
        let (status, _) = ingest
            .post(&body, Some(&signed(SECRET, now(), &body)))
            .await;
        assert_eq!(status, 503, "no broker, no 200");
        refused += 1;
    }
    rabbit.start_app();
    ingest.wait_ready(true, Duration::from_secs(30)).await;
    // Whereby retries what got 503: the same events now go through.
    for i in 0..5 {
        let body = sample_event(&format!("during-{i}"));
        let (status, _) = ingest
            .post(&body, Some(&signed(SECRET, now(), &body)))
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(refused, 5);
    assert_eq!(
        ingest.queued().await,
        15,
        "every 200 is in the queue, across the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_broker_gives_503_within_the_publish_timeout() {
    let rabbit = PrivateRabbit::start();
    let ingest = spawn_ingest(TestBroker::on(&rabbit.url()).await).await;
    rabbit.pause();
    let body = sample_event("evt-paused");
    let started = std::time::Instant::now();
    let (status, _) = ingest
        .post(&body, Some(&signed(SECRET, now(), &body)))
        .await;
    let waited = started.elapsed();
    rabbit.resume();
    assert_eq!(status, 503);
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Once the broker answers again, webhooks go through; the one that got 503 is
    // retried by Whereby.
    ingest.wait_ready(true, Duration::from_secs(30)).await;
    let mut delivered = false;
    for _ in 0..50 {
        let (status, _) = ingest
            .post(&body, Some(&signed(SECRET, now(), &body)))
            .await;
        if status == 200 {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(delivered, "ingest recovered after the pause");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_503_at_once_never_429() {
    let rabbit = PrivateRabbit::start();
    let broker = TestBroker::on(&rabbit.url()).await;
    let mut s = settings(&broker, SECRET);
    s.http.webhook_max_in_flight = 1;
    let ingest = std::sync::Arc::new(spawn_with(broker, s, true).await);
    // The broker hangs, so the first webhook holds the only slot until its publish
    // times out; the second finds none free.
    rabbit.pause();
    let first = {
        let ingest = ingest.clone();
        tokio::spawn(async move {
            let body = sample_event("evt-slow");
            ingest
                .post(&body, Some(&signed(SECRET, now(), &body)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = sample_event("evt-overload");
    let started = std::time::Instant::now();
    let (status, text) = ingest
        .post(&body, Some(&signed(SECRET, now(), &body)))
        .await;
    assert_eq!(status, 503, "{text}");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "answered without waiting for the broker"
    );
    assert_eq!(first.await.expect("first").0, 503);
    rabbit.resume();
    let metrics = ingest.metrics().await;
    assert!(
        metrics.contains("ingest_webhooks_rejected_total{reason=\"overloaded\"} 1"),
        "{metrics}"
    );
}
