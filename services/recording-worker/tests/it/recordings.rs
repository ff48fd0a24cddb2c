//! Recordings: S3 uploads announced on SQS (moto), the recording.finished webhook,
//! the hand-off to the pipeline, and the scheduled jobs. All over the network.

use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use messaging::{
    RecordingReady,
    lapin::{
        options::{BasicAckOptions, BasicConsumeOptions},
        types::FieldTable,
    },
};
use serde_json::json;
use test_support::{PrivatePostgres, TestAws, TestBroker, TestDatabase};

use crate::helpers::*;

/// A meeting whose Whereby room is `/<room>`; returns (meeting id, the key a
/// recording of it started now would have).
async fn meeting_with_room(
    db: &TestDatabase,
    whereby_id: &str,
    room: &str,
) -> (uuid::Uuid, String) {
    let meeting = insert_meeting(db, whereby_id).await;
    db.execute(&format!("UPDATE meetings SET room_name = '/{room}', start_date = now() - interval '1 hour' WHERE id = '{meeting}'")).await;
    let key = format!(
        "{room}-{}.mp4",
        (Utc::now() - chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    (meeting, key)
}

async fn recording_rows(db: &TestDatabase) -> usize {
    db.count("SELECT id FROM recordings").await
}

/// Takes the pipeline's messages.
async fn pipeline_messages(broker: &TestBroker, expected: usize) -> Vec<RecordingReady> {
    let (conn, channel) = broker.channel().await;
    let mut consumer = channel
        .basic_consume(
            broker.topology.pipeline_queue().as_str().into(),
            "pipeline-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut out = Vec::new();
    while out.len() < expected {
        let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_secs(10), consumer.next()).await
        else {
            break;
        };
        out.push(serde_json::from_slice(&delivery.data).expect("recording.ready"));
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    let _ = conn.close(200, "bye".into()).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_becomes_a_recording_handed_to_the_pipeline() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let (meeting, key) = meeting_with_room(&db, "r-100", "standup-0b1f").await;
    let worker = spawn_worker(with_aws(settings(&db.url, &broker), &aws)).await;
    aws.put(&key, b"not really a video").await;
    wait_until(Duration::from_secs(20), || async {
        db.count("SELECT 1 FROM recordings WHERE status = 'queued'")
            .await
            == 1
    })
    .await;
    let ready = pipeline_messages(&broker, 1).await;
    assert_eq!(ready.len(), 1);
    let r = &ready[0];
    assert_eq!(
        (r.bucket.as_str(), r.key.as_str(), r.size_bytes),
        (aws.bucket.as_str(), key.as_str(), 18)
    );
    assert_eq!(r.meeting_id, meeting.to_string());
    assert_eq!(r.room_name, "/standup-0b1f");
    assert_eq!(r.owner, "alice");
    assert_eq!(r.whereby_meeting_id, "r-100");
    // The test event and the notification are deleted once handled.
    wait_until(Duration::from_secs(10), || async {
        aws.depth(&aws.queue_url).await == 0
    })
    .await;
    assert_eq!(aws.depth(&aws.dlq_url).await, 0);
    let metrics = worker.metrics().await;
    assert!(
        metrics.contains("recworker_recordings_total{outcome=\"queued\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("recworker_sqs_messages_total{outcome=\"deleted\"}"));
    assert!(metrics.contains("recworker_sqs_oldest_message_age_seconds"));
    worker.stop().await;
}

fn notification(bucket: &str, raw_key: &str) -> String {
    json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "eventTime": "2030-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": raw_key, "size": 18}}}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_notifications_and_the_webhook_in_both_orders_make_one_recording() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let (_, key_a) = meeting_with_room(&db, "r-200", "room-a").await;
    let (_, key_b) = meeting_with_room(&db, "r-201", "room-b").await;
    let worker = spawn_worker(with_aws(settings(&db.url, &broker), &aws)).await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let finished = |id: &str, key: &str| {
        event(
            id,
            "recording.finished",
            Utc::now(),
            json!({"recordingId": format!("wr-{id}"), "filename": key, "status": "completed"}),
        )
    };

    // A: the webhook first, then the upload (and its notification, sent twice more).
    publish(&publisher, &broker.topology, &finished("fa", &key_a)).await;
    wait_until(Duration::from_secs(10), || async {
        recording_rows(&db).await == 1
    })
    .await;
    aws.put(&key_a, b"video a").await;
    let encoded = key_a.replace(':', "%3A");
    aws.send_raw(&notification(&aws.bucket, &encoded)).await;
    aws.send_raw(&notification(&aws.bucket, &encoded)).await;
    // B: the upload first, then the webhook.
    aws.put(&key_b, b"video b").await;
    wait_until(Duration::from_secs(20), || async {
        db.count("SELECT 1 FROM recordings WHERE status = 'queued'")
            .await
            == 2
    })
    .await;
    publish(&publisher, &broker.topology, &finished("fb", &key_b)).await;
    wait_until(Duration::from_secs(10), || async {
        db.count("SELECT 1 FROM recordings WHERE whereby_recording_id IS NOT NULL")
            .await
            == 2
    })
    .await;
    wait_until(Duration::from_secs(10), || async {
        aws.depth(&aws.queue_url).await == 0
    })
    .await;

    assert_eq!(recording_rows(&db).await, 2, "one row per file");
    assert_eq!(db.count("SELECT 1 FROM recordings WHERE status = 'queued' AND size_bytes = 7 AND meeting_id IS NOT NULL").await, 2);
    let ready = pipeline_messages(&broker, 3).await;
    assert_eq!(ready.len(), 2, "handed off once each: {ready:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_meetings_and_odd_names_are_kept_as_unmatched() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let worker = spawn_worker(with_aws(settings(&db.url, &broker), &aws)).await;
    aws.put("nobody-2030-01-01T09:05:30Z.mp4", b"x").await;
    aws.put("sub folder/holiday video.mp4", b"y").await;
    aws.put("notes.txt", b"not a recording").await;
    wait_until(Duration::from_secs(20), || async {
        recording_rows(&db).await == 2
    })
    .await;
    wait_until(Duration::from_secs(10), || async {
        aws.depth(&aws.queue_url).await == 0
    })
    .await;
    assert_eq!(db.count("SELECT 1 FROM recordings WHERE status = 'unmatched' AND room_name = '/nobody' AND unmatched_reason LIKE 'no meeting%'").await, 1);
    assert_eq!(db.count("SELECT 1 FROM recordings WHERE status = 'unmatched' AND object_key = 'sub folder/holiday video.mp4' AND unmatched_reason LIKE '%start time%'").await, 1);
    assert_eq!(
        broker.ready_count(&broker.topology.pipeline_queue()).await,
        0,
        "unmatched recordings are not handed off"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_handled_ends_in_the_dead_letter_queue() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let (_, key) = meeting_with_room(&db, "r-300", "room-c").await;
    aws.put(&key, b"video").await;
    let worker = spawn_worker(with_aws(settings(&db.url, &broker), &aws)).await;
    // Readable records are registered even when one record of the message is not.
    let body = json!({"Records": [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": aws.bucket}, "object": {"key": key.replace(':', "%3A")}}},
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": "broken"}}
    ]})
    .to_string();
    aws.send_raw(&body).await;
    aws.send_raw("this is not JSON").await;
    wait_until(Duration::from_secs(30), || async {
        aws.depth(&aws.dlq_url).await == 2
    })
    .await;
    assert_eq!(
        db.count("SELECT 1 FROM recordings WHERE status = 'queued'")
            .await,
        1
    );
    assert_eq!(
        pipeline_messages(&broker, 2).await.len(),
        1,
        "registered once despite two receives"
    );
    worker.stop().await;
}

/// A worker's unit of recording intake, outside any worker.
fn intake_for(
    db: &TestDatabase,
    aws: &TestAws,
    publisher: messaging::Publisher,
) -> recording_worker::intake::Intake {
    recording_worker::intake::Intake {
        pool: db::build_pool(&db.url, &db::PoolSettings::default()).expect("pool"),
        s3: aws.s3.clone(),
        publisher,
        publish_timeout: Duration::from_secs(5),
        metrics: recording_worker::metrics::WorkerMetrics::register(&prometheus::Registry::new())
            .expect("metrics"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_commit_before_delete_makes_one_recording() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let (_, key) = meeting_with_room(&db, "r-400", "room-d").await;
    aws.put(&key, b"video").await;
    // A first worker receives the notification and commits, then "dies" before
    // deleting it (the intake below is that worker's unit of work): the message
    // becomes visible again after its visibility timeout.
    let s = settings(&db.url, &broker);
    let (publisher, _stop) = test_publisher(&broker).await;
    let intake = intake_for(&db, &aws, publisher);
    let received = storage::receive(
        &aws.sqs,
        &aws.queue_url,
        Duration::from_secs(2),
        Duration::from_secs(2),
    )
    .await
    .expect("receive");
    assert!(!received.is_empty());
    intake.register(&aws.bucket, &key).await.expect("commit");
    // The next worker gets the message again.
    let worker = spawn_worker(with_aws(s, &aws)).await;
    wait_until(Duration::from_secs(20), || async {
        aws.depth(&aws.queue_url).await == 0
    })
    .await;
    assert_eq!(recording_rows(&db).await, 1);
    assert_eq!(
        pipeline_messages(&broker, 2).await.len(),
        1,
        "handed off once"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_stops_receiving_and_nothing_is_lost() {
    let pg = PrivatePostgres::start();
    let admin = pg.url("postgres");
    let url = pg.url("whereby");
    exec(&admin, "CREATE DATABASE whereby").await;
    db::migrate::run_pending(&url).await.expect("migrate");
    exec(&url, "INSERT INTO rooms (id, name, owner) VALUES ('00000000-0000-0000-0000-000000000001', 'r', 'a')").await;
    exec(&url, "INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, is_locked, room_mode, recording_type, recording_trigger, platform) VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', 'a', 'r-500', '/room-e', 'u', now() - interval '1 hour', now() + interval '1 hour', false, 'normal', 'cloud', 'none', 'whereby')").await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let worker = spawn_worker(with_aws(settings(&url, &broker), &aws)).await;
    wait_until(Duration::from_secs(10), || async {
        aws.depth(&aws.queue_url).await == 0
    })
    .await;
    pg.stop_server();
    let stamp = (Utc::now() - chrono::Duration::minutes(5))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    for i in 0..3 {
        aws.put(&format!("part{i}/room-e-{stamp}.mp4"), b"video")
            .await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Nothing was received (each receive would count towards the redrive limit).
    assert!(aws.depth(&aws.queue_url).await >= 3);
    assert_eq!(aws.depth(&aws.dlq_url).await, 0);
    pg.start_server();
    wait_until(Duration::from_secs(30), || async {
        aws.depth(&aws.queue_url).await == 0
    })
    .await;
    assert_eq!(
        count(&url, "SELECT 1 FROM recordings WHERE status = 'queued'").await,
        3
    );
    assert_eq!(aws.depth(&aws.dlq_url).await, 0);
    worker.stop().await;
}

async fn exec(url: &str, sql: &str) {
    assert!(count(url, sql).await < usize::MAX);
}

async fn count(url: &str, sql: &str) -> usize {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .expect("sql")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_with_nothing_published_is_never_reported_as_one() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let (publisher, _stop) = test_publisher(&broker).await;
    let intake = intake_for(&db, &aws, publisher);
    // A row ready for the hand-off whose meeting is gone by the time it is handed off.
    let now = chrono::Utc::now();
    let row = db::recordings::RecordingRow {
        id: uuid::Uuid::new_v4(),
        bucket: aws.bucket.clone(),
        object_key: "gone-2030-01-01T09:05:30Z.mp4".to_owned(),
        meeting_id: Some(uuid::Uuid::new_v4()),
        room_name: Some("/gone".to_owned()),
        recorded_at: Some(now),
        format: Some("mp4".to_owned()),
        size_bytes: Some(5),
        content_type: None,
        etag: None,
        whereby_recording_id: None,
        status: "uploaded".to_owned(),
        unmatched_reason: None,
        created_at: now,
        updated_at: now,
        queued_at: None,
        done_at: None,
        deleted_at: None,
    };
    let mut conn = intake.pool.get().await.expect("connection");
    let published = intake.hand_off(&mut conn, &row).await.expect("no failure");
    assert!(!published, "nothing was published, so it is not a hand-off");
    assert_eq!(
        broker.ready_count(&broker.topology.pipeline_queue()).await,
        0,
        "and nothing reached the pipeline"
    );
    // Without a size (not yet seen in the bucket) likewise.
    let unsized_row = db::recordings::RecordingRow {
        size_bytes: None,
        ..row
    };
    assert!(
        !intake
            .hand_off(&mut conn, &unsized_row)
            .await
            .expect("no failure")
    );
}
