//! The scheduled jobs, run by hand: catch-up scan, retention, meeting clean-up.

use std::time::Duration;

use chrono::Utc;
use recording_worker::jobs::Job;
use test_support::{TestAws, TestBroker, TestDatabase};
use whereby_stand_in::{StandInConfig, StandInServer};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_registers_what_lost_notifications_missed_and_never_twice() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let meeting = insert_meeting(&db, "r-600").await;
    db.execute(&format!("UPDATE meetings SET room_name = '/room-f', start_date = now() - interval '1 hour' WHERE id = '{meeting}'")).await;
    let key = format!(
        "room-f-{}.mp4",
        (Utc::now() - chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    aws.put(&key, b"video").await;
    aws.put("other.txt", b"ignored").await;
    // The notifications are lost: nobody polls the queue (no queue URL configured).
    let mut s = settings(&db.url, &broker);
    s.recordings.recording_storage_aws_bucket_name = Some(aws.bucket.clone());
    let worker = spawn_worker(s).await;
    wait_until(Duration::from_secs(10), || async { worker.ready().await }).await;
    let report = worker
        .jobs
        .run_locked(Job::Scan)
        .await
        .expect("scan")
        .expect("not locked");
    assert_eq!((report.examined, report.changed, report.failed), (1, 1, 0));
    assert_eq!(
        db.count("SELECT 1 FROM recordings WHERE status = 'queued'")
            .await,
        1
    );
    let again = worker
        .jobs
        .run_locked(Job::Scan)
        .await
        .expect("scan")
        .expect("not locked");
    assert_eq!(again.changed, 0);
    assert_eq!(db.count("SELECT 1 FROM recordings").await, 1);
    assert_eq!(
        broker.ready_count(&broker.topology.pipeline_queue()).await,
        1
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_what_the_pipeline_finished_long_ago() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let aws = TestAws::new().await;
    let cases = [
        ("old-done.mp4", "done", "now() - interval '40 days'", true),
        ("new-done.mp4", "done", "now() - interval '1 day'", false),
        ("old-failed.mp4", "failed", "NULL", false),
        ("old-queued.mp4", "queued", "NULL", false),
        ("old-unmatched.mp4", "unmatched", "NULL", false),
    ];
    for (key, status, done_at, _) in cases {
        aws.put(key, b"video").await;
        let reason = if status == "unmatched" {
            "'no meeting'"
        } else {
            "NULL"
        };
        db.execute(&format!(
            "INSERT INTO recordings (id, bucket, object_key, status, done_at, unmatched_reason, created_at) \
             VALUES (gen_random_uuid(), '{}', '{key}', '{status}', {done_at}, {reason}, now() - interval '60 days')",
            aws.bucket
        ))
        .await;
    }
    let mut s = settings(&db.url, &broker);
    s.recordings.recording_retention_days = Some(30);
    let worker = spawn_worker(s).await;
    let report = worker
        .jobs
        .run_locked(Job::Retention)
        .await
        .expect("retention")
        .expect("not locked");
    assert_eq!((report.examined, report.changed), (1, 1));
    for (key, _, _, deleted) in cases {
        assert_eq!(!aws.exists(key).await, deleted, "{key}");
    }
    assert_eq!(db.count("SELECT 1 FROM recordings WHERE status = 'deleted' AND deleted_at IS NOT NULL AND object_key = 'old-done.mp4'").await, 1);
    assert_eq!(
        db.count("SELECT 1 FROM recordings WHERE status = 'deleted'")
            .await,
        1
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_clean_up_ends_past_and_empty_meetings_at_whereby_too() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let whereby = StandInServer::spawn(StandInConfig {
        api_key: "worker-test-key".to_owned(),
        ..StandInConfig::default()
    })
    .expect("stand-in");
    let past = insert_meeting(&db, "w-past").await;
    let empty = insert_meeting(&db, "w-empty").await;
    let busy = insert_meeting(&db, "w-busy").await;
    let fresh = insert_meeting(&db, "w-fresh").await;
    db.execute(&format!("UPDATE meetings SET end_date = now() - interval '1 minute', start_date = now() - interval '2 hours' WHERE id = '{past}'")).await;
    db.execute(&format!("INSERT INTO meeting_sessions (meeting_id, room_session_id, started_at, ended_at) VALUES ('{empty}', 's1', now() - interval '1 hour', now() - interval '30 minutes')")).await;
    db.execute(&format!("INSERT INTO meeting_sessions (meeting_id, room_session_id, started_at) VALUES ('{busy}', 's2', now() - interval '1 hour')")).await;
    db.execute(&format!("INSERT INTO meeting_sessions (meeting_id, room_session_id, started_at, ended_at) VALUES ('{fresh}', 's3', now() - interval '10 minutes', now() - interval '10 seconds')")).await;
    let mut s = settings(&db.url, &broker);
    s.whereby.whereby_api_url = whereby.api_url.clone();
    s.jobs.meeting_empty_grace_seconds = 600;
    let worker = spawn_worker(s).await;
    let report = worker
        .jobs
        .run_locked(Job::MeetingCleanup)
        .await
        .expect("cleanup")
        .expect("not locked");
    assert_eq!((report.examined, report.changed, report.failed), (2, 2, 0));
    for (id, active) in [(past, false), (empty, false), (busy, true), (fresh, true)] {
        assert_eq!(
            db.count(&format!(
                "SELECT 1 FROM meetings WHERE id = '{id}' AND is_active"
            ))
            .await,
            usize::from(active),
            "{id}"
        );
    }
    let deletes: Vec<String> = whereby
        .stand_in
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect();
    assert_eq!(deletes.len(), 2);
    assert!(
        deletes.iter().any(|p| p.ends_with("/w-past"))
            && deletes.iter().any(|p| p.ends_with("/w-empty")),
        "{deletes:?}"
    );
    // A Whereby failure leaves the meeting active for the next run.
    let stuck = insert_meeting(&db, "w-stuck").await;
    db.execute(&format!("UPDATE meetings SET end_date = now() - interval '1 minute', start_date = now() - interval '2 hours' WHERE id = '{stuck}'")).await;
    whereby.stand_in.push_fault(whereby_stand_in::Fault {
        status: Some(500),
        times: 5,
        ..Default::default()
    });
    let report = worker
        .jobs
        .run_locked(Job::MeetingCleanup)
        .await
        .expect("cleanup")
        .expect("not locked");
    assert_eq!(report.failed, 1);
    assert_eq!(
        db.count(&format!(
            "SELECT 1 FROM meetings WHERE id = '{stuck}' AND is_active"
        ))
        .await,
        1
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_runs_a_job_at_a_time() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut other = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    // Another replica holds the clean-up lock.
    diesel::sql_query("SELECT pg_advisory_lock(5928218560933154389)")
        .execute(&mut other)
        .await
        .expect("lock");
    assert!(
        worker
            .jobs
            .run_locked(Job::MeetingCleanup)
            .await
            .expect("run")
            .is_none(),
        "skipped while locked"
    );
    diesel::sql_query("SELECT pg_advisory_unlock(5928218560933154389)")
        .execute(&mut other)
        .await
        .expect("unlock");
    assert!(
        worker
            .jobs
            .run_locked(Job::MeetingCleanup)
            .await
            .expect("run")
            .is_some()
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_personal_data_job_runs_under_its_lock_and_through_the_admin_route() {
    let db = TestDatabase::new().await;
    let broker = TestBroker::new().await;
    let meeting = insert_meeting(&db, "r-pd").await;
    db.execute(&format!(
        "INSERT INTO meeting_participants (meeting_id, participant_id, display_name, external_id, is_person, state, state_as_of, state_event_id) \
         VALUES ('{meeting}', 'p-old', 'Old Name', 'ext-old', true, 'left', now() - interval '45 days', 'e-old')"
    ))
    .await;
    let worker = spawn_worker(settings(&db.url, &broker)).await;
    let report = worker
        .jobs
        .run_locked(Job::PersonalData)
        .await
        .expect("ran")
        .expect("not locked elsewhere");
    assert_eq!(report.changed, 1);
    assert_eq!(
        db.count(
            "SELECT 1 FROM meeting_participants WHERE display_name IS NULL AND external_id IS NULL"
        )
        .await,
        1
    );
    let res = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/admin/jobs/personal_data",
            worker.port
        ))
        .send()
        .await
        .expect("admin route");
    assert_eq!(res.status().as_u16(), 200);
    worker.stop().await;
}
