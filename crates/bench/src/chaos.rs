//! The fault suite: real processes, the real broker and database, faults injected
//! from outside while a Whereby-like sender sends a known set of events; at the end
//! every event that got a 200 must be applied exactly once and the queues drained.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::json;

use crate::{
    sender::{self, Sent},
    stack::{self, MEETING, SECRET, Stack},
};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub sent: usize,
    pub accepted: usize,
    pub applied: usize,
    /// Applied although the sender never saw a 200 (answered 503 or timed out after
    /// the broker had it): allowed, Whereby's retry makes it a duplicate delivery.
    pub applied_unacknowledged: usize,
    /// Effects beyond one per applied event.
    pub duplicates: usize,
    pub lost: usize,
    /// From the end of the fault until everything accepted was applied.
    pub recovery_seconds: f64,
    /// What else the scenario checked (dead-letters, deadlocks, readiness…).
    pub detail: String,
    pub passed: bool,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    RabbitRestart,
    RabbitCloseConnections,
    RabbitPause,
    RabbitDiskAlarm,
    PostgresRestart,
    IngestSigkill,
    WorkerSigkillRepeated,
    SigtermDrain,
    PostgresReadOnly,
    PostgresBlackHole,
    WorkerConsumerPanic,
}

const EVENTS: usize = 300;
const RATE: f64 = 60.0;

/// What a fault's injection observed beyond the common checks, and whether it
/// holds (the consumer panic must show in readiness and the restart counter).
struct Observed {
    detail: String,
    holds: bool,
}

impl Observed {
    fn nothing() -> Self {
        Self {
            detail: String::new(),
            holds: true,
        }
    }
}

/// `ALTER SYSTEM` on the private server, then a reload (as a managed Postgres's
/// failover makes it read-only for a few seconds).
async fn set_read_only(stack: &Stack, on: bool) -> anyhow::Result<()> {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(&stack.pg().url("postgres")).await?;
    // This session stays writable whatever the server's default becomes.
    diesel::sql_query("SET default_transaction_read_only = off")
        .execute(&mut conn)
        .await?;
    let statement = if on {
        "ALTER SYSTEM SET default_transaction_read_only = on"
    } else {
        "ALTER SYSTEM RESET default_transaction_read_only"
    };
    diesel::sql_query(statement).execute(&mut conn).await?;
    diesel::sql_query("SELECT pg_reload_conf()")
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// The worker's `recworker_task_restarts_total`, all tasks.
async fn worker_restarts(url: &str) -> f64 {
    let Ok(text) = reqwest::get(format!("{url}/metrics")).await else {
        return 0.0;
    };
    text.text()
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("recworker_task_restarts_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn inject(stack: &mut Stack, fault: Fault) -> anyhow::Result<Observed> {
    match fault {
        Fault::PostgresReadOnly => {
            set_read_only(stack, true).await?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            set_read_only(stack, false).await?;
        }
        Fault::PostgresBlackHole => {
            // Longer than the statement timeout (2 s here) and the worker's bound
            // on one batch (twice that plus the pool wait).
            stack.pg_proxy.stall();
            tokio::time::sleep(Duration::from_secs(8)).await;
            stack.pg_proxy.unstall();
        }
        Fault::WorkerConsumerPanic => {
            let before = worker_restarts(&stack.worker_url).await;
            let http = reqwest::Client::new();
            let res = http
                .post(format!("{}/admin/faults/consumer_panic", stack.worker_url))
                .send()
                .await?;
            anyhow::ensure!(
                res.status().as_u16() == 202,
                "fault switch: {}",
                res.status()
            );
            let started = Instant::now();
            let (mut down_at, mut up_at) = (None, None);
            while started.elapsed() < Duration::from_secs(20) && up_at.is_none() {
                let ready = http
                    .get(format!("{}/readyz", stack.worker_url))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                match (ready, down_at) {
                    (false, None) => down_at = Some(started.elapsed()),
                    (true, Some(_)) => up_at = Some(started.elapsed()),
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let restarts = worker_restarts(&stack.worker_url).await - before;
            let gap = match (down_at, up_at) {
                (Some(d), Some(u)) => Some((u - d).as_secs_f64()),
                _ => None,
            };
            return Ok(Observed {
                detail: format!(
                    "readiness false for {}, restarts {restarts}",
                    gap.map_or("(never seen)".to_owned(), |g| format!("{g:.2} s"))
                ),
                holds: gap.is_some() && restarts >= 1.0,
            });
        }
        Fault::RabbitRestart => {
            stack.rabbit().stop_app();
            tokio::time::sleep(Duration::from_secs(2)).await;
            stack.rabbit().start_app();
        }
        Fault::RabbitCloseConnections => {
            stack.rabbit().close_all_connections();
        }
        Fault::RabbitPause => {
            // Longer than the publish timeout (3 s): ingest must answer 503.
            stack.rabbit().pause();
            tokio::time::sleep(Duration::from_secs(5)).await;
            stack.rabbit().resume();
        }
        Fault::RabbitDiskAlarm => {
            anyhow::ensure!(
                stack.rabbit().ctl(&["set_disk_free_limit", "100000GB"]),
                "set the disk alarm"
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
            anyhow::ensure!(
                stack.rabbit().ctl(&["set_disk_free_limit", "10MB"]),
                "clear the disk alarm"
            );
        }
        Fault::PostgresRestart => {
            stack.pg().stop_server();
            tokio::time::sleep(Duration::from_secs(4)).await;
            stack.pg().start_server();
        }
        Fault::IngestSigkill => {
            if let Some(p) = stack.ingest.as_mut() {
                p.kill();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            stack.start_ingest().await?;
        }
        Fault::WorkerSigkillRepeated => {
            for _ in 0..3 {
                if let Some(p) = stack.worker.as_mut() {
                    p.kill();
                }
                stack.start_worker().await?;
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        }
        Fault::SigtermDrain => {
            for p in [stack.ingest.as_mut(), stack.worker.as_mut()]
                .into_iter()
                .flatten()
            {
                anyhow::ensure!(
                    p.terminate(Duration::from_secs(30)),
                    "{} did not drain cleanly",
                    p.name
                );
            }
            stack.start_worker().await?;
            stack.start_ingest().await?;
        }
    }
    Ok(Observed::nothing())
}

/// The events the sender got a 200 for, and (after waiting up to two minutes for
/// them all) the events of this run in the inbox.
async fn accepted_and_applied(
    stack: &Stack,
    run: &str,
    sent: &[Sent],
) -> (HashSet<String>, HashSet<String>) {
    let accepted: HashSet<String> = sent
        .iter()
        .filter(|s| s.accepted)
        .map(|s| s.id.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut applied = stack.applied(run).await.unwrap_or_default();
    while !accepted.is_subset(&applied) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        applied = stack.applied(run).await.unwrap_or_default();
    }
    (accepted, applied)
}

async fn webhook_scenario(stack: &mut Stack, name: &str, fault: Fault) -> anyhow::Result<Row> {
    let run = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let events: Vec<_> = (0..EVENTS)
        .map(|i| sender::joined(MEETING, &run, i))
        .collect();
    let url = format!("{}/v1/whereby", stack.ingest_url);
    // Each scenario starts from a healthy system: one fault's recovery must not be
    // counted against the next.
    stack.wait_ready().await?;
    let dead_before = stack.dead_lettered().await.unwrap_or(0);
    let sending = tokio::spawn(async move { sender::paced(&url, SECRET, events, RATE, 2).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let observed = inject(stack, fault).await?;
    let recovered = Instant::now();
    let sent: Vec<Sent> = sending.await?;
    let (accepted, applied) = accepted_and_applied(stack, &run, &sent).await;
    let recovery = recovered.elapsed().as_secs_f64();
    let effects = stack.effects(&run).await.unwrap_or(0);
    let lost = accepted.difference(&applied).count();
    let dead = stack
        .dead_lettered()
        .await
        .unwrap_or(0)
        .saturating_sub(dead_before);
    let detail = [format!("dead-lettered {dead}"), observed.detail]
        .into_iter()
        .filter(|d| !d.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let row = Row {
        scenario: name.to_owned(),
        sent: sent.len(),
        accepted: accepted.len(),
        applied: applied.intersection(&accepted).count(),
        applied_unacknowledged: applied.difference(&accepted).count(),
        duplicates: effects.saturating_sub(applied.len()),
        lost,
        recovery_seconds: recovery,
        detail,
        passed: lost == 0
            && effects == applied.len()
            && !accepted.is_empty()
            && dead == 0
            && observed.holds,
    };
    Ok(row)
}

/// Two worker replicas applying overlapping batches under load: events spread
/// over four meetings and ten participants each, so concurrent batches write the
/// same rows. No deadlock, nothing dead-lettered, one row per participant.
async fn two_workers_scenario(stack: &mut Stack) -> anyhow::Result<Row> {
    let run = format!("two-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    stack.start_worker2().await?;
    let deadlocks = "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = 'whereby'";
    let deadlocks_before = stack.scalar(deadlocks).await?;
    let dead_before = stack.dead_lettered().await.unwrap_or(0);
    let participants = 10;
    let events: Vec<_> = (0..EVENTS * 2)
        .map(|i| {
            let meeting = stack::MEETINGS[i % stack::MEETINGS.len()];
            let participant = format!("p-{run}-{}", (i / stack::MEETINGS.len()) % participants);
            sender::client_event(meeting, format!("{run}-{i:07}"), &participant, i % 3 != 2)
        })
        .collect();
    let url = format!("{}/v1/whereby", stack.ingest_url);
    let started = Instant::now();
    let sent = sender::paced(&url, SECRET, events, RATE * 5.0, 2).await;
    let (accepted, applied) = accepted_and_applied(stack, &run, &sent).await;
    // pg_stat_database is flushed within about a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let new_deadlocks = stack.scalar(deadlocks).await? - deadlocks_before;
    let dead = stack
        .dead_lettered()
        .await
        .unwrap_or(0)
        .saturating_sub(dead_before);
    let rows = stack::exec(
        &stack.db_url,
        &format!("SELECT 1 FROM meeting_participants WHERE participant_id LIKE 'p-{run}-%'"),
    )
    .await?;
    let expected_rows = stack::MEETINGS.len() * participants;
    if let Some(mut p) = stack.worker2.take() {
        p.terminate(Duration::from_secs(30));
    }
    let lost = accepted.difference(&applied).count();
    Ok(Row {
        scenario: "two-workers-overlapping-batches".to_owned(),
        sent: sent.len(),
        accepted: accepted.len(),
        applied: applied.intersection(&accepted).count(),
        applied_unacknowledged: applied.difference(&accepted).count(),
        duplicates: rows.saturating_sub(expected_rows),
        lost,
        recovery_seconds: started.elapsed().as_secs_f64(),
        detail: format!(
            "deadlocks {new_deadlocks}; dead-lettered {dead}; participant rows {rows}/{expected_rows}"
        ),
        passed: lost == 0
            && new_deadlocks == 0
            && dead == 0
            && rows == expected_rows
            && !accepted.is_empty(),
    })
}

/// Delayed retries while the worker queue is full: events for a meeting that
/// does not exist yet go to the delay queue; the worker stops taking deliveries
/// (SIGSTOP) while the queue fills to its limit, so the delays expire while it
/// refuses publishes. Nothing may be dropped: once there is room (and the meeting
/// exists) every accepted event is applied to it.
async fn queue_full_scenario(stack: &mut Stack) -> anyhow::Result<Row> {
    let run = format!("full-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let late_meeting = format!("late-{run}");
    // A topology of its own: a small worker queue and longer delays.
    let saved = stack.env.clone();
    stack
        .env
        .insert("AMQP_PREFIX".to_owned(), format!("{run}."));
    stack
        .env
        .insert("AMQP_MAX_LENGTH".to_owned(), "40".to_owned());
    stack.env.insert(
        "AMQP_RETRY_DELAYS_MS".to_owned(),
        "1500,3000,6000".to_owned(),
    );
    // One delivery in hand at a time, so that a stopped worker leaves the messages
    // in the queue (where they count towards its limit) rather than prefetched.
    stack
        .env
        .insert("WORKER_PREFETCH".to_owned(), "1".to_owned());
    stack
        .env
        .insert("WORKER_BATCH_SIZE".to_owned(), "1".to_owned());
    restart_ingest_and_worker(stack).await?;
    let url = format!("{}/v1/whereby", stack.ingest_url);
    let late: Vec<_> = (0..20)
        .map(|i| {
            sender::client_event(
                &late_meeting,
                format!("{run}-late-{i:03}"),
                &format!("p-{run}-late-{i}"),
                true,
            )
        })
        .collect();
    let started = Instant::now();
    let mut sent = sender::paced(&url, SECRET, late, 200.0, 2).await;
    // The worker has moved them to the delay queue; now it stops taking deliveries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(worker) = stack.worker.as_ref() {
        worker.signal("-STOP");
    }
    let fillers: Vec<_> = (0..60)
        .map(|i| {
            sender::client_event(
                stack::MEETING,
                format!("{run}-fill-{i:03}"),
                &format!("p-{run}-fill-{i}"),
                true,
            )
        })
        .collect();
    sent.extend(sender::paced(&url, SECRET, fillers, 200.0, 2).await);
    let refused = sent.iter().filter(|s| !s.accepted).count();
    // The first delay (1.5 s) expires while the queue is full.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack::exec(&stack.db_url, &format!("INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, is_locked, room_mode, recording_type, recording_trigger, platform) VALUES (gen_random_uuid(), '00000000-0000-0000-0000-0000000000c1', 'ops', '{late_meeting}', '/late-room', 'https://x/late-room', now() - interval '1 hour', now() + interval '8 hours', false, 'normal', 'cloud', 'none', 'whereby')")).await?;
    if let Some(worker) = stack.worker.as_ref() {
        worker.signal("-CONT");
    }
    let recovered = Instant::now();
    let (accepted, applied) = accepted_and_applied(stack, &run, &sent).await;
    let late_applied = stack::exec(
        &stack.db_url,
        &format!("SELECT 1 FROM webhook_events WHERE event_id LIKE '{run}-late-%' AND outcome = 'applied'"),
    )
    .await?;
    let effects = stack::exec(
        &stack.db_url,
        &format!("SELECT 1 FROM meeting_participants WHERE participant_id LIKE 'p-{run}-%'"),
    )
    .await?;
    let lost = accepted.difference(&applied).count();
    stack.env = saved;
    restart_ingest_and_worker(stack).await?;
    let late_accepted = accepted.iter().filter(|id| id.contains("-late-")).count();
    Ok(Row {
        scenario: "worker-queue-full-while-retries-expire".to_owned(),
        sent: sent.len(),
        accepted: accepted.len(),
        applied: applied.intersection(&accepted).count(),
        applied_unacknowledged: applied.difference(&accepted).count(),
        duplicates: effects.saturating_sub(applied.len()),
        lost,
        recovery_seconds: recovered.elapsed().as_secs_f64(),
        detail: format!(
            "refused while full {refused}; late events applied to their meeting {late_applied}/{late_accepted}; {:.0} s in all",
            started.elapsed().as_secs_f64()
        ),
        passed: lost == 0 && late_applied == late_accepted && late_accepted > 0 && refused > 0,
    })
}

async fn restart_ingest_and_worker(stack: &mut Stack) -> anyhow::Result<()> {
    for p in [stack.ingest.as_mut(), stack.worker.as_mut()]
        .into_iter()
        .flatten()
    {
        p.terminate(Duration::from_secs(30));
    }
    stack.start_worker().await?;
    stack.start_ingest().await
}

/// A recording whose name no parser expects (the two-byte character that used to
/// panic the parser, and others) followed by valid ones: the odd ones are kept as
/// unmatched, every valid one is handed off, and no loop of the worker restarts.
async fn odd_recording_scenario(stack: &mut Stack) -> anyhow::Result<Row> {
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let odd = [
        format!("{run}/odd/café-recording-final-v2.mp4"),
        format!("{run}/odd/é-{stamp}.mp4"),
        format!("{run}/odd/😀😀😀.mkv"),
    ];
    let valid: Vec<String> = (0..10)
        .map(|i| format!("{run}/{i:02}/chaos-room-{stamp}.mp4"))
        .collect();
    let restarts_before = worker_restarts(&stack.worker_url).await;
    let started = Instant::now();
    for key in odd.iter().chain(&valid) {
        stack.aws.put(key, b"recording").await;
    }
    let count = async |sql: String| stack::exec(&stack.db_url, &sql).await.unwrap_or(0);
    let queued = format!(
        "SELECT 1 FROM recordings WHERE object_key LIKE '{run}/%' AND object_key NOT LIKE '{run}/odd/%' AND status = 'queued'"
    );
    let unmatched = format!(
        "SELECT 1 FROM recordings WHERE object_key LIKE '{run}/odd/%' AND status = 'unmatched' AND unmatched_reason IS NOT NULL"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while (count(queued.clone()).await < valid.len() || count(unmatched.clone()).await < odd.len())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (handed_off, kept) = (count(queued).await, count(unmatched).await);
    let rows = count(format!(
        "SELECT 1 FROM recordings WHERE object_key LIKE '{run}/%'"
    ))
    .await;
    let restarts = worker_restarts(&stack.worker_url).await - restarts_before;
    let alive = stack.worker.as_mut().is_some_and(crate::procs::Proc::alive);
    Ok(Row {
        scenario: "unparseable-recording-then-valid".to_owned(),
        sent: odd.len() + valid.len(),
        accepted: odd.len() + valid.len(),
        applied: handed_off + kept,
        applied_unacknowledged: 0,
        duplicates: rows.saturating_sub(odd.len() + valid.len()),
        lost: (odd.len() + valid.len()).saturating_sub(handed_off + kept),
        recovery_seconds: started.elapsed().as_secs_f64(),
        detail: format!(
            "handed off {handed_off}/{}; kept unmatched {kept}/{}; worker restarts {restarts}",
            valid.len(),
            odd.len()
        ),
        passed: handed_off == valid.len()
            && kept == odd.len()
            && rows == odd.len() + valid.len()
            && restarts == 0.0
            && alive,
    })
}

/// S3/SQS unreachable (a cut proxy) while recordings arrive.
async fn storage_scenario(stack: &mut Stack) -> anyhow::Result<Row> {
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let keys: Vec<String> = (0..20)
        .map(|i| format!("{run}/{i:02}/chaos-room-{stamp}.mp4"))
        .collect();
    for key in &keys[..10] {
        stack.aws.put(key, b"recording").await;
    }
    stack.aws_proxy.cut();
    for key in &keys[10..] {
        stack.aws.put(key, b"recording").await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    stack.aws_proxy.restore();
    let recovered = Instant::now();
    let count = async |sql: String| stack::exec(&stack.db_url, &sql).await.unwrap_or(0);
    let query =
        format!("SELECT 1 FROM recordings WHERE object_key LIKE '{run}/%' AND status = 'queued'");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut applied = count(query.clone()).await;
    while applied < keys.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        applied = count(query.clone()).await;
    }
    let rows = count(format!(
        "SELECT 1 FROM recordings WHERE object_key LIKE '{run}/%'"
    ))
    .await;
    Ok(Row {
        scenario: "s3-sqs-unreachable".to_owned(),
        sent: keys.len(),
        accepted: keys.len(),
        applied,
        applied_unacknowledged: 0,
        duplicates: rows.saturating_sub(keys.len()),
        lost: keys.len().saturating_sub(applied),
        recovery_seconds: recovered.elapsed().as_secs_f64(),
        detail: String::new(),
        passed: applied == keys.len() && rows == keys.len(),
    })
}

/// The Whereby stand-in answering 429 and 5xx while meetings are created.
async fn whereby_scenario(stack: &mut Stack) -> anyhow::Result<Row> {
    stack.start_room_api().await?;
    let token = crate::token(stack::JWT_SECRET, "chaos-user")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let rooms = 20;
    for i in 0..rooms {
        http.post(format!("{}/v1/rooms", stack.room_api_url))
            .bearer_auth(&token)
            .json(&json!({"name": format!("chaos-{i}")}))
            .send()
            .await?;
    }
    let control = format!("{}/_stand-in/faults", stack.stand_in_url);
    http.post(&control)
        .json(&json!({"status": 429, "retry_after": 1, "times": 4}))
        .send()
        .await?;
    http.post(&control)
        .json(&json!({"status": 503, "times": 6}))
        .send()
        .await?;
    let started = Instant::now();
    let requests = (0..rooms).map(|i| {
        let (http, url, token) = (
            http.clone(),
            format!("{}/v1/rooms/chaos-{i}/meeting", stack.room_api_url),
            token.clone(),
        );
        async move {
            http.post(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    // Every row must be a meeting Whereby has; every failed request left no row.
    let rows = stack::exec(
        &stack.db_url,
        "SELECT 1 FROM meetings WHERE room_id IS NOT NULL AND owner = 'chaos-user'",
    )
    .await?;
    let listed: serde_json::Value = http
        .get(format!("{}/v1/meetings?limit=100", stack.stand_in_url))
        .bearer_auth(stack::API_KEY)
        .send()
        .await?
        .json()
        .await?;
    let at_whereby = listed["results"].as_array().map_or(0, Vec::len);
    Ok(Row {
        scenario: "whereby-429-and-5xx".to_owned(),
        sent: rooms,
        accepted: created,
        applied: rows,
        applied_unacknowledged: 0,
        // Whereby meetings without a row (orphans the compensation missed).
        duplicates: at_whereby.saturating_sub(rows),
        lost: created.saturating_sub(rows),
        recovery_seconds: started.elapsed().as_secs_f64(),
        detail: format!("Whereby meetings {at_whereby}, rows {rows}"),
        passed: rows == created && at_whereby == rows && created > 0,
    })
}

pub async fn run(only: Option<&str>) -> anyhow::Result<Vec<Row>> {
    let mut stack = Stack::start(true).await?;
    let scenarios: [(&str, Option<Fault>); 16] = [
        ("rabbitmq-stop-start", Some(Fault::RabbitRestart)),
        (
            "rabbitmq-connections-closed",
            Some(Fault::RabbitCloseConnections),
        ),
        ("rabbitmq-paused-sigstop", Some(Fault::RabbitPause)),
        ("rabbitmq-disk-alarm", Some(Fault::RabbitDiskAlarm)),
        ("postgres-stop-start", Some(Fault::PostgresRestart)),
        ("ingest-sigkill", Some(Fault::IngestSigkill)),
        ("worker-sigkill-x3", Some(Fault::WorkerSigkillRepeated)),
        ("sigterm-drain", Some(Fault::SigtermDrain)),
        ("postgres-read-only-5s", Some(Fault::PostgresReadOnly)),
        ("postgres-black-holed", Some(Fault::PostgresBlackHole)),
        ("worker-consumer-panic", Some(Fault::WorkerConsumerPanic)),
        ("two-workers-overlapping-batches", None),
        ("worker-queue-full-while-retries-expire", None),
        ("s3-sqs-unreachable", None),
        ("unparseable-recording-then-valid", None),
        ("whereby-429-and-5xx", None),
    ];
    let mut rows = Vec::new();
    for (name, fault) in scenarios {
        if only.is_some_and(|o| !o.split(',').any(|n| n == name)) {
            continue;
        }
        let row = match (name, fault) {
            (_, Some(f)) => webhook_scenario(&mut stack, name, f).await?,
            ("two-workers-overlapping-batches", None) => two_workers_scenario(&mut stack).await?,
            ("worker-queue-full-while-retries-expire", None) => {
                queue_full_scenario(&mut stack).await?
            }
            ("s3-sqs-unreachable", None) => storage_scenario(&mut stack).await?,
            ("unparseable-recording-then-valid", None) => {
                odd_recording_scenario(&mut stack).await?
            }
            _ => whereby_scenario(&mut stack).await?,
        };
        eprintln!(
            "{}: {}",
            row.scenario,
            if row.passed { "ok" } else { "FAILED" }
        );
        rows.push(row);
    }
    Ok(rows)
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | sent | accepted | applied | applied, not acked | duplicates | lost | recovery (s) | checked | result |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |\n",
            r.scenario,
            r.sent,
            r.accepted,
            r.applied,
            r.applied_unacknowledged,
            r.duplicates,
            r.lost,
            r.recovery_seconds,
            r.detail,
            if r.passed { "pass" } else { "FAIL" }
        ));
    }
    out
}
