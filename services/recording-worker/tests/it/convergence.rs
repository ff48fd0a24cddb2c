//! Property: for any permutation of a set of events, with any duplicates, in batches
//! of any size, the final state is the same. Applied through the worker's unit of
//! work on a real database (the in-memory fold of a batch and the SQL merge with the
//! stored rows held to each other).

use chrono::Utc;
use recording_worker::apply::{self, Outcome};
use serde_json::{Value, json};
use test_support::TestDatabase;

use crate::helpers::*;

fn scenario(meeting: &str) -> Vec<Value> {
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let mut events = vec![
        event(
            "a1",
            "room.client.joined",
            at(1),
            client(meeting, "ada", "host", 1, json!({"host": 1})),
        ),
        event(
            "b1",
            "room.client.joined",
            at(2),
            client(
                meeting,
                "bob",
                "visitor",
                2,
                json!({"host": 1, "visitor": 1}),
            ),
        ),
        event(
            "s1",
            "room.session.started",
            at(3),
            json!({"meetingId": meeting, "roomSessionId": "s-1"}),
        ),
        event(
            "r1",
            "room.client.joined",
            at(4),
            client(
                meeting,
                "rec",
                "recorder",
                3,
                json!({"host": 1, "visitor": 1, "recorder": 1}),
            ),
        ),
        event(
            "b2",
            "room.client.left",
            at(5),
            client(
                meeting,
                "bob",
                "visitor",
                2,
                json!({"host": 1, "recorder": 1}),
            ),
        ),
        event(
            "b3",
            "room.client.joined",
            at(6),
            client(
                meeting,
                "bob",
                "visitor",
                3,
                json!({"host": 1, "visitor": 1, "recorder": 1}),
            ),
        ),
        event(
            "c1",
            "room.client.joined",
            at(7),
            client(
                meeting,
                "cy",
                "visitor",
                4,
                json!({"host": 1, "visitor": 2, "recorder": 1}),
            ),
        ),
        event(
            "c2",
            "room.client.left",
            at(8),
            client(
                meeting,
                "cy",
                "visitor",
                3,
                json!({"host": 1, "visitor": 1, "recorder": 1}),
            ),
        ),
        event(
            "r2",
            "room.client.left",
            at(9),
            client(
                meeting,
                "rec",
                "recorder",
                2,
                json!({"host": 1, "visitor": 1}),
            ),
        ),
        event(
            "a2",
            "room.client.left",
            at(10),
            client(meeting, "ada", "host", 1, json!({"visitor": 1})),
        ),
        event(
            "s2",
            "room.session.ended",
            at(11),
            json!({"meetingId": meeting, "roomSessionId": "s-1"}),
        ),
        event(
            "s3",
            "room.session.started",
            at(12),
            json!({"meetingId": meeting, "roomSessionId": "s-2"}),
        ),
    ];
    // Two events with the same createdAt: the event id breaks the tie.
    events.push(event(
        "z9",
        "room.client.left",
        at(13),
        client(meeting, "bob", "visitor", 0, json!({})),
    ));
    events.push(event(
        "z1",
        "room.client.joined",
        at(13),
        client(meeting, "bob", "visitor", 1, json!({"visitor": 1})),
    ));
    events
}

/// One event at a time (batches of one, as lone deliveries come).
async fn apply_all(db_url: &str, events: &[Value]) {
    let pool = db::build_pool(db_url, &db::PoolSettings::default()).expect("pool");
    for e in events {
        let parsed = apply::parse(&envelope_bytes(e)).expect("parse");
        let outcomes = apply::apply_batch(&pool, &[(&parsed, false)], None)
            .await
            .expect("apply");
        assert!(
            matches!(outcomes[..], [Outcome::Applied | Outcome::Duplicate]),
            "{outcomes:?}"
        );
    }
}

/// The same in batches of random sizes: batching changes nothing.
async fn apply_all_batched(db_url: &str, events: &[Value], rng: &mut fastrand::Rng) {
    let pool = db::build_pool(db_url, &db::PoolSettings::default()).expect("pool");
    let parsed: Vec<_> = events
        .iter()
        .map(|e| apply::parse(&envelope_bytes(e)).expect("parse"))
        .collect();
    let mut rest = &parsed[..];
    while !rest.is_empty() {
        let n = rng.usize(1..=rest.len().min(7));
        let (batch, tail) = rest.split_at(n);
        let inputs: Vec<_> = batch.iter().map(|e| (e, false)).collect();
        let outcomes = apply::apply_batch(&pool, &inputs, None)
            .await
            .expect("batch");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Applied | Outcome::Duplicate)),
            "{outcomes:?}"
        );
        rest = tail;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_order_with_any_duplicates_converges_to_the_same_state() {
    let db = TestDatabase::new().await;
    let meeting = insert_meeting(&db, "4242").await;
    let events = scenario("4242");
    apply_all(&db.url, &events).await;
    let expected = state(&db.url, meeting).await;
    assert!(
        expected.contains("num_clients=0"),
        "the z9/z1 tie: z9 wins on id: {expected}"
    );

    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for round in 0..40 {
        db.execute("TRUNCATE webhook_events, meeting_participants, meeting_sessions")
            .await;
        db.execute("UPDATE meetings SET num_clients = 0, num_clients_by_role = '{}', num_clients_as_of = NULL, num_clients_event_id = NULL").await;
        let mut shuffled = events.clone();
        for _ in 0..rng.usize(0..6) {
            let dup = shuffled[rng.usize(0..shuffled.len())].clone();
            shuffled.push(dup);
        }
        rng.shuffle(&mut shuffled);
        // Half the rounds one transaction per event, half in random batches.
        if round % 2 == 0 {
            apply_all(&db.url, &shuffled).await;
        } else {
            apply_all_batched(&db.url, &shuffled, &mut rng).await;
        }
        let got = state(&db.url, meeting).await;
        assert_eq!(
            got,
            expected,
            "round {round}: order {:?}",
            shuffled.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()
        );
    }
}
