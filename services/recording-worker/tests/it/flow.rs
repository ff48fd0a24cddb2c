use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use test_support::{TestBroker, TestDatabase};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_leaves_and_sessions_are_applied_and_every_event_is_kept() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let meeting = insert_meeting(&db, "5001").await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let t0 = Utc::now() - chrono::Duration::seconds(30);
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let events = [
        event(
            "e1",
            "room.client.joined",
            at(1),
            client("5001", "p-ada", "host", 1, json!({"host": 1})),
        ),
        event(
            "e2",
            "room.client.joined",
            at(2),
            client(
                "5001",
                "p-bob",
                "visitor",
                2,
                json!({"host": 1, "visitor": 1}),
            ),
        ),
        event(
            "e3",
            "room.session.started",
            at(3),
            json!({"meetingId": "5001", "roomName": "/r-x", "roomSessionId": "s-1"}),
        ),
        event(
            "e4",
            "room.client.joined",
            at(4),
            client(
                "5001",
                "p-rec",
                "recorder",
                3,
                json!({"host": 1, "visitor": 1, "recorder": 1}),
            ),
        ),
        event(
            "e5",
            "room.client.left",
            at(5),
            client(
                "5001",
                "p-bob",
                "visitor",
                2,
                json!({"host": 1, "recorder": 1}),
            ),
        ),
        event(
            "e6",
            "recording.finished",
            at(6),
            json!({"recordingId": "r1", "filename": "r-x-2030-01-01T00:00:00Z.mp4", "status": "completed"}),
        ),
        event("e7", "something.new", at(7), json!({"whatever": true})),
    ];
    for e in &events {
        publish(&publisher, &broker.topology, e).await;
    }
    wait_until(Duration::from_secs(20), || async {
        inbox_count(&db).await == events.len()
    })
    .await;

    let s = state(&db.url, meeting).await;
    assert!(
        s.contains("num_clients=1"),
        "host only; the recorder is not a person: {s}"
    );
    assert_eq!(
        db.count("SELECT 1 FROM meeting_participants WHERE state = 'joined' AND is_person")
            .await,
        1
    );
    assert_eq!(db.count("SELECT 1 FROM meeting_participants WHERE participant_id = 'p-bob' AND state = 'left' AND last_left_at IS NOT NULL AND first_joined_at IS NOT NULL").await, 1);
    assert_eq!(
        db.count(
            "SELECT 1 FROM meeting_participants WHERE participant_id = 'p-rec' AND NOT is_person"
        )
        .await,
        1
    );
    assert_eq!(db.count("SELECT 1 FROM meeting_sessions WHERE room_session_id = 's-1' AND started_at IS NOT NULL AND ended_at IS NULL").await, 1);
    assert_eq!(
        db.count("SELECT 1 FROM webhook_events WHERE outcome = 'applied'")
            .await,
        5
    );
    assert_eq!(
        db.count("SELECT 1 FROM webhook_events WHERE outcome = 'stored'")
            .await,
        2
    );
    assert_eq!(db.count("SELECT 1 FROM webhook_events WHERE request_id = 'req-test' AND payload->>'id' = event_id").await, 7);

    // Everything acked: nothing left in the queue, nothing dead-lettered.
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
    let metrics = worker.metrics().await;
    assert!(
        metrics.contains("recworker_events_total{outcome=\"applied\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("recworker_apply_lag_seconds_count 7"));
    assert!(
        metrics.contains("recworker_events_by_type_total{type=\"room.client.joined\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("recworker_events_by_type_total{type=\"other\"} 1"));
    assert!(metrics.contains("recworker_db_pool_connections{state=\"size\"}"));
    assert!(worker.ready().await);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_beats_its_meeting_is_retried_then_applied() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    publish(
        &publisher,
        &broker.topology,
        &event(
            "early",
            "room.client.joined",
            Utc::now(),
            client("6001", "p1", "host", 1, json!({"host": 1})),
        ),
    )
    .await;
    // The worker retries with delay; room-api's commit lands meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        inbox_count(&db).await,
        0,
        "not applied (nor dropped) before the meeting exists"
    );
    let meeting = insert_meeting(&db, "6001").await;
    wait_until(Duration::from_secs(10), || async {
        inbox_count(&db).await == 1
    })
    .await;
    assert_eq!(
        db.count("SELECT 1 FROM webhook_events WHERE outcome = 'applied'")
            .await,
        1
    );
    assert!(state(&db.url, meeting).await.contains("num_clients=1"));
    assert!(
        worker
            .metrics()
            .await
            .contains("recworker_events_retried_total ")
    );
    assert_eq!(
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await,
        0
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_meeting_never_appears_is_kept_as_unmatched_and_not_looped() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    publish(
        &publisher,
        &broker.topology,
        &event(
            "orphan",
            "room.client.left",
            Utc::now(),
            client("7001", "p1", "host", 0, json!({})),
        ),
    )
    .await;
    // Three retries of 200, 400 and 600 ms, then stored as unmatched.
    wait_until(Duration::from_secs(10), || async {
        inbox_count(&db).await == 1
    })
    .await;
    assert_eq!(db.count("SELECT 1 FROM webhook_events WHERE outcome = 'unmatched' AND whereby_meeting_id = '7001'").await, 1);
    let metrics = worker.metrics().await;
    assert!(
        metrics.contains("recworker_events_retried_total 3"),
        "{metrics}"
    );
    assert!(metrics.contains("recworker_events_total{outcome=\"unmatched\"} 1"));
    for queue in [
        broker.topology.worker_queue(),
        broker.topology.dead_letter_queue(),
    ] {
        assert_eq!(broker.ready_count(&queue).await, 0, "{queue}");
    }
    worker.stop().await;
}

/// An event the database can never store (a participant id too large for its
/// index: SQLSTATE 54000) among good ones: whatever batch it lands in is redone one
/// by one, the good events are applied and only it is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_is_dead_lettered_alone() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    insert_meeting(&db, "8101").await;
    let (publisher, _stop) = test_publisher(&broker).await;
    // Random text does not compress below the btree row limit (about 2.7 kB).
    let huge: String = (0..600)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let at = Utc::now();
    for i in 0..6i64 {
        let participant = if i == 3 {
            huge.clone()
        } else {
            format!("p{i}")
        };
        publish(
            &publisher,
            &broker.topology,
            &event(
                &format!("e-{i}"),
                "room.client.joined",
                at + chrono::Duration::milliseconds(i),
                client(
                    "8101",
                    &participant,
                    "visitor",
                    i + 1,
                    json!({"visitor": i + 1}),
                ),
            ),
        )
        .await;
    }
    // Started after the publishes, so that the events arrive together (a batch).
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    wait_until(Duration::from_secs(15), || async {
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await
            == 1
    })
    .await;
    wait_until(Duration::from_secs(15), || async {
        inbox_count(&db).await == 5
    })
    .await;
    let metrics = worker.metrics().await;
    assert!(
        metrics.contains("recworker_events_dead_lettered_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("recworker_events_total{outcome=\"applied\"} 5"),
        "{metrics}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_while_others_keep_flowing() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    insert_meeting(&db, "8001").await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    publish_raw(
        &publisher,
        &broker.topology,
        "room.client.joined",
        b"{not json",
        "poison-1",
    )
    .await;
    publish_raw(
        &publisher,
        &broker.topology,
        "room.client.joined",
        br#"{"schema_version":99,"received_at":"2030-01-01T00:00:00Z","event":{}}"#,
        "poison-2",
    )
    .await;
    for i in 0..5 {
        publish(
            &publisher,
            &broker.topology,
            &event(
                &format!("ok-{i}"),
                "room.client.joined",
                Utc::now(),
                client(
                    "8001",
                    &format!("p{i}"),
                    "visitor",
                    i + 1,
                    json!({"visitor": i + 1}),
                ),
            ),
        )
        .await;
    }
    wait_until(Duration::from_secs(10), || async {
        inbox_count(&db).await == 5
    })
    .await;
    wait_until(Duration::from_secs(10), || async {
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await
            == 2
    })
    .await;
    assert!(
        worker
            .metrics()
            .await
            .contains("recworker_events_dead_lettered_total 2")
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_ack_causes_no_second_effect() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let meeting = insert_meeting(&db, "9001").await;
    // The first three commits are each followed by a dropped connection, so those
    // deliveries come back from the broker after their effects were committed.
    let worker = spawn_worker_with_crashes(settings(&db.url, &broker), 3).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let t0 = Utc::now();
    for i in 0..6i64 {
        let kind = if i % 2 == 0 {
            "room.client.joined"
        } else {
            "room.client.left"
        };
        let n = if i % 2 == 0 { 1 } else { 0 };
        publish(
            &publisher,
            &broker.topology,
            &event(
                &format!("c{i}"),
                kind,
                t0 + chrono::Duration::seconds(i),
                client("9001", "p1", "host", n, json!({"host": n})),
            ),
        )
        .await;
        // One at a time, so that each commit holds one event and three crashes
        // happen (a batch would put several events behind one commit).
        let expected = usize::try_from(i + 1).unwrap_or(0);
        wait_until(Duration::from_secs(20), || async {
            inbox_count(&db).await == expected
                && broker.ready_count(&broker.topology.worker_queue()).await == 0
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = worker.metrics().await;
    // Every crash redelivers what was committed but not acked: the event it hit and
    // any committed with it in the same batch (the next event may join a
    // redelivered one), each recognised as a duplicate. So at least one duplicate
    // per crash, and never a second effect (below).
    let duplicates: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("recworker_events_total{outcome=\"duplicate\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!((3..=6).contains(&duplicates), "{metrics}");
    // Each of the six events has exactly one inbox row (checked above) and the
    // effects below are those of applying each once.
    assert_eq!(
        worker
            .crashes
            .as_ref()
            .map(|c| c.load(std::sync::atomic::Ordering::SeqCst)),
        Some(0)
    );
    let s = state(&db.url, meeting).await;
    assert!(
        s.contains("state: \"left\"") && s.contains("num_clients=0"),
        "{s}"
    );
    worker.stop().await;
}

/// The broker cancels the worker's subscription (its queue is deleted, as when the
/// node hosting it goes): the worker connects again, declares the topology again
/// and goes on consuming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_the_broker_cancels_subscribes_again() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    insert_meeting(&db, "7001").await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    wait_until(Duration::from_secs(10), || async { worker.ready().await }).await;
    let (conn, channel) = broker.channel().await;
    channel
        .queue_delete(
            broker.topology.worker_queue().as_str().into(),
            Default::default(),
        )
        .await
        .expect("delete the worker queue");
    let _ = conn.close(200, "bye".into()).await;
    // Whoever connects first declares the queue again; the worker must be
    // consuming from it for the event to be applied.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    publish(
        &publisher,
        &broker.topology,
        &event(
            "after-cancel",
            "room.client.joined",
            Utc::now(),
            client("7001", "p1", "host", 1, json!({"host": 1})),
        ),
    )
    .await;
    wait_until(Duration::from_secs(15), || async {
        inbox_count(&db).await == 1
    })
    .await;
    worker.stop().await;
}
