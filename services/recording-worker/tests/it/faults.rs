//! Faults injected from outside, on private server instances.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use test_support::{PrivatePostgres, PrivateRabbit, TestBroker, TestDatabase};

use crate::helpers::*;

async fn count(url: &str, sql: &str) -> Option<usize> {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(url).await.ok()?;
    diesel::sql_query(sql).execute(&mut conn).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_pauses_the_worker_and_everything_is_applied_after() {
    let pg = PrivatePostgres::start();
    let admin = pg.url("postgres");
    count(&admin, "CREATE DATABASE whereby")
        .await
        .expect("create db");
    let url = pg.url("whereby");
    db::migrate::run_pending(&url).await.expect("migrate");
    count(&url, "INSERT INTO rooms (id, name, owner) VALUES ('00000000-0000-0000-0000-000000000001', 'r', 'a')").await.expect("room");
    count(&url, "INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, is_locked, room_mode, recording_type, recording_trigger, platform) VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', 'a', '3001', '/r-x', 'u', now(), now() + interval '1 hour', false, 'normal', 'cloud', 'none', 'whereby')").await.expect("meeting");

    let broker = TestBroker::new().await;
    let worker = spawn_worker(settings(&url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let t0 = Utc::now();
    let send = |i: i64| {
        event(
            &format!("pg{i}"),
            "room.client.joined",
            t0 + chrono::Duration::milliseconds(i),
            client(
                "3001",
                &format!("p{i}"),
                "visitor",
                i + 1,
                json!({"visitor": i + 1}),
            ),
        )
    };
    for i in 0..5 {
        publish(&publisher, &broker.topology, &send(i)).await;
    }
    wait_until(Duration::from_secs(10), || async {
        count(&url, "SELECT 1 FROM webhook_events").await == Some(5)
    })
    .await;

    pg.stop_server();
    for i in 5..25 {
        publish(&publisher, &broker.topology, &send(i)).await;
    }
    // The worker holds its delivery and waits: not ready, nothing dead-lettered,
    // nothing acked (the rest stays queued).
    wait_until(Duration::from_secs(10), || async { !worker.ready().await }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await,
        0
    );
    assert!(broker.ready_count(&broker.topology.worker_queue()).await > 0);

    pg.start_server();
    wait_until(Duration::from_secs(30), || async {
        count(&url, "SELECT 1 FROM webhook_events").await == Some(25)
    })
    .await;
    assert_eq!(
        count(&url, "SELECT 1 FROM meeting_participants").await,
        Some(25)
    );
    assert_eq!(
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await,
        0
    );
    wait_until(Duration::from_secs(10), || async { worker.ready().await }).await;
    assert!(
        worker
            .metrics()
            .await
            .contains("recworker_database_waits_total")
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_is_survived_without_loss_or_double_effects() {
    let rabbit = PrivateRabbit::start();
    let db = TestDatabase::new().await;
    let broker = TestBroker::on(&rabbit.url()).await;
    insert_meeting(&db, "2001").await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let t0 = Utc::now();
    let send = |i: i64| {
        event(
            &format!("br{i}"),
            "room.client.joined",
            t0 + chrono::Duration::milliseconds(i),
            client(
                "2001",
                &format!("p{i}"),
                "visitor",
                i + 1,
                json!({"visitor": i + 1}),
            ),
        )
    };
    for i in 0..20 {
        publish(&publisher, &broker.topology, &send(i)).await;
    }
    rabbit.stop_app();
    wait_until(Duration::from_secs(10), || async { !worker.ready().await }).await;
    rabbit.start_app();
    // Both the worker and our publisher reconnect on their own.
    wait_until(Duration::from_secs(30), || async {
        publisher.is_connected()
    })
    .await;
    for i in 20..40 {
        publish(&publisher, &broker.topology, &send(i)).await;
    }
    wait_until(Duration::from_secs(30), || async {
        inbox_count(&db).await == 40
    })
    .await;
    wait_until(Duration::from_secs(10), || async { worker.ready().await }).await;
    assert_eq!(db.count("SELECT 1 FROM meeting_participants").await, 40);
    assert_eq!(
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await,
        0
    );
    worker.stop().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_event_in_hand_and_loses_nothing() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    insert_meeting(&db, "1001").await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let t0 = Utc::now();
    for i in 0..200i64 {
        publish(
            &publisher,
            &broker.topology,
            &event(
                &format!("sd{i}"),
                "room.client.joined",
                t0 + chrono::Duration::milliseconds(i),
                client(
                    "1001",
                    &format!("p{i}"),
                    "visitor",
                    i + 1,
                    json!({"visitor": i + 1}),
                ),
            ),
        )
        .await;
    }
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    wait_until(Duration::from_secs(10), || async {
        inbox_count(&db).await > 10
    })
    .await;
    worker.stop().await;
    let after_stop = inbox_count(&db).await;
    assert!(after_stop < 200, "stopped mid-stream ({after_stop})");
    let again = spawn_worker(settings(&db.url, &broker)).await;
    wait_until(Duration::from_secs(30), || async {
        inbox_count(&db).await == 200
    })
    .await;
    assert_eq!(db.count("SELECT 1 FROM meeting_participants").await, 200);
    wait_until(Duration::from_secs(5), || async {
        broker.ready_count(&broker.topology.worker_queue()).await == 0
    })
    .await;
    assert_eq!(
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await,
        0
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_retry_waits_for_room_when_the_worker_queue_is_full() {
    use messaging::{
        Topology, TopologySettings,
        lapin::{
            BasicProperties,
            options::{
                BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
            },
        },
    };
    // The broker-level promise, with the topology the services declare: a worker
    // queue of two messages at most and one 300 ms delay step.
    let settings = TopologySettings {
        prefix: format!("t{}.", uuid::Uuid::new_v4().simple()),
        retry_delays: vec![Duration::from_millis(300)],
        max_length: 2,
        ..TopologySettings::default()
    };
    // A private node: it retries a refused dead-letter publish after 2 s (the
    // broker's default is 3 minutes; docs/operations.md sets it for production).
    let rabbit = PrivateRabbit::start();
    let broker = TestBroker::on(&rabbit.url()).await;
    let topology = Topology::new(settings.clone());
    let (conn, channel) = broker.channel().await;
    topology.declare(&conn, &channel).await.expect("declare");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let publish = async |exchange: String, key: String, body: &[u8]| {
        channel
            .basic_publish(
                exchange.as_str().into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm")
    };
    // The worker queue is full: a quorum queue enforces its limit once it is
    // reached, so fill it until a publish is refused.
    let mut fillers = 0;
    loop {
        let c = publish(
            topology.events_exchange(),
            "whereby.x".to_owned(),
            b"filler",
        )
        .await;
        if c.is_nack() {
            break;
        }
        fillers += 1;
        assert!(fillers <= 10, "a full worker queue refuses publishes");
    }
    // An event for a meeting not known yet goes to the delay queue, and its TTL
    // expires while the worker queue refuses it.
    let c = publish(
        topology.retry_exchange(),
        Topology::retry_routing_key(Duration::from_millis(300)),
        b"the event",
    )
    .await;
    assert!(c.is_ack());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Expired, but not moved (the worker queue still holds only the fillers): the
    // delay queue keeps it as pending dead-letter, which it does not count as ready.
    let delay_queue = topology.retry_queue(Duration::from_millis(300));
    assert_eq!(broker.ready_count(&topology.worker_queue()).await, fillers);
    // Room again: the event arrives.
    for _ in 0..fillers {
        let got = channel
            .basic_get(
                topology.worker_queue().as_str().into(),
                BasicGetOptions::default(),
            )
            .await
            .expect("get")
            .expect("a filler");
        got.delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let mut arrived = None;
    for _ in 0..150 {
        if let Some(m) = channel
            .basic_get(
                topology.worker_queue().as_str().into(),
                BasicGetOptions::default(),
            )
            .await
            .expect("get")
        {
            arrived = Some(m.delivery.data.clone());
            let _ = m.delivery.ack(BasicAckOptions::default()).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(arrived.as_deref(), Some(b"the event".as_slice()));
    assert_eq!(broker.ready_count(&delay_queue).await, 0);
    topology.delete(&channel).await.expect("clean up");
    let _ = conn.close(200, "bye".into()).await;
}
