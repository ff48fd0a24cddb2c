//! Data nobody planned for: text Postgres cannot store, event data that does not
//! parse, and two workers applying overlapping batches at once.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use test_support::{TestBroker, TestDatabase};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_any_string_is_stored_not_dead_lettered() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let meeting = insert_meeting(&db, "7001").await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let mut data = client("7001", "p-nul", "host", 1, json!({"host": 1}));
    data["displayName"] = json!("Ada\u{0}Lovelace");
    data["externalId"] = json!("\u{0}");
    data["metadata"] = json!({"k\u{0}": ["v\u{0}"]});
    publish(
        &publisher,
        &broker.topology,
        &event("nul\u{0}-1", "room.client.joined", Utc::now(), data),
    )
    .await;
    wait_until(Duration::from_secs(20), || async {
        inbox_count(&db).await == 1
    })
    .await;
    assert_eq!(
        db.count("SELECT 1 FROM meeting_participants WHERE display_name = 'Ada\u{FFFD}Lovelace' AND state = 'joined'")
            .await,
        1
    );
    assert!(state(&db.url, meeting).await.contains("num_clients=1"));
    assert_eq!(
        db.count(
            "SELECT 1 FROM webhook_events WHERE outcome = 'applied' AND event_id = 'nul\u{FFFD}-1'"
        )
        .await,
        1
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
async fn unparseable_data_is_kept_counted_and_applied_when_it_comes_again() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let meeting = insert_meeting(&db, "7002").await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let t0 = Utc::now() - chrono::Duration::seconds(10);
    // Whereby's own example: a session event with `roomSessionId: null`.
    let null_session = event(
        "u-session",
        "room.session.started",
        t0,
        json!({"meetingId": "7002", "roomName": "/r-x", "roomSessionId": null}),
    );
    // A join without its participant.
    let mut no_participant = client("7002", "p", "host", 1, json!({"host": 1}));
    no_participant
        .as_object_mut()
        .map(|o| o.remove("participantId"));
    let no_participant = event("u-join", "room.client.joined", t0, no_participant);
    for e in [&null_session, &no_participant] {
        publish(&publisher, &broker.topology, e).await;
    }
    wait_until(Duration::from_secs(20), || async {
        inbox_count(&db).await == 2
    })
    .await;
    assert_eq!(
        db.count("SELECT 1 FROM webhook_events WHERE outcome = 'unrecognised' AND reason IS NOT NULL AND payload ? 'data'")
            .await,
        2
    );
    let metrics = worker.metrics().await;
    assert!(
        metrics.contains("outcome=\"unrecognised\"} 2"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("outcome"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await,
        0
    );

    // A parser fix is deployed (here: the sender fills the field) and the events
    // come again (`whereby-ops events reapply`): the same ids are applied now.
    let fixed_session = event(
        "u-session",
        "room.session.started",
        t0,
        json!({"meetingId": "7002", "roomName": "/r-x", "roomSessionId": "s-9"}),
    );
    let fixed_join = event(
        "u-join",
        "room.client.joined",
        t0,
        client("7002", "p", "host", 1, json!({"host": 1})),
    );
    for e in [&fixed_session, &fixed_join] {
        publish(&publisher, &broker.topology, e).await;
    }
    wait_until(Duration::from_secs(20), || async {
        db.count("SELECT 1 FROM webhook_events WHERE outcome = 'applied'")
            .await
            == 2
    })
    .await;
    assert_eq!(
        db.count("SELECT 1 FROM meeting_sessions WHERE room_session_id = 's-9'")
            .await,
        1
    );
    assert!(state(&db.url, meeting).await.contains("num_clients=1"));
    // Applied ones are final: yet another copy is a duplicate, nothing changes.
    publish(&publisher, &broker.topology, &fixed_join).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        db.count("SELECT 1 FROM webhook_events WHERE outcome = 'applied'")
            .await,
        2
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_applying_overlapping_batches_never_deadlock() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let meetings: Vec<String> = (0..8).map(|i| format!("80{i:02}")).collect();
    for m in &meetings {
        insert_meeting(&db, m).await;
    }
    let one = spawn_worker(settings(&db.url, &broker)).await;
    let two = spawn_worker(settings(&db.url, &broker)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    // Every event touches several of the same rows (meetings' counts, the same
    // participants), in shuffled order, so the two workers' batches overlap.
    let mut rng = fastrand::Rng::with_seed(7);
    let t0 = Utc::now() - chrono::Duration::seconds(600);
    let mut events = Vec::new();
    for i in 0..1200 {
        let m = &meetings[rng.usize(0..meetings.len())];
        let p = format!("p-{}", rng.usize(0..6));
        let kind = if rng.bool() {
            "room.client.joined"
        } else {
            "room.client.left"
        };
        let n = rng.i64(0..6);
        events.push(event(
            &format!("dl-{i}"),
            kind,
            t0 + chrono::Duration::milliseconds(i),
            client(m, &p, "host", n, json!({"host": n})),
        ));
    }
    rng.shuffle(&mut events);
    let sends = events.chunks(100).map(|chunk| {
        let publisher = publisher.clone();
        let topology = broker.topology.clone();
        let chunk = chunk.to_vec();
        tokio::spawn(async move {
            for e in &chunk {
                publish(&publisher, &topology, e).await;
            }
        })
    });
    for s in sends.collect::<Vec<_>>() {
        s.await.expect("send");
    }
    wait_until(Duration::from_secs(60), || async {
        inbox_count(&db).await == events.len()
    })
    .await;
    assert_eq!(
        broker
            .ready_count(&broker.topology.dead_letter_queue())
            .await,
        0
    );
    // No deadlock at all: the server's own count for this database (its
    // statistics are flushed within a second or so).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        db.count(
            "SELECT 1 FROM pg_stat_database WHERE datname = current_database() AND deadlocks > 0"
        )
        .await,
        0,
        "the workers deadlocked"
    );
    one.stop().await;
    two.stop().await;
}
