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
}

const EVENTS: usize = 300;
const RATE: f64 = 60.0;

async fn inject(stack: &mut Stack, fault: Fault) -> anyhow::Result<()> {
    match fault {
        Fault::RabbitRestart => {
            stack.rabbit.stop_app();
            tokio::time::sleep(Duration::from_secs(2)).await;
            stack.rabbit.start_app();
        }
        Fault::RabbitCloseConnections => {
            stack.rabbit.close_all_connections();
        }
        Fault::RabbitPause => {
            // Longer than the publish timeout (3 s): ingest must answer 503.
            stack.rabbit.pause();
            tokio::time::sleep(Duration::from_secs(5)).await;
            stack.rabbit.resume();
        }
        Fault::RabbitDiskAlarm => {
            anyhow::ensure!(
                stack.rabbit.ctl(&["set_disk_free_limit", "100000GB"]),
                "set the disk alarm"
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
            anyhow::ensure!(
                stack.rabbit.ctl(&["set_disk_free_limit", "10MB"]),
                "clear the disk alarm"
            );
        }
        Fault::PostgresRestart => {
            stack.pg.stop_server();
            tokio::time::sleep(Duration::from_secs(4)).await;
            stack.pg.start_server();
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
    Ok(())
}

async fn webhook_scenario(stack: &mut Stack, name: &str, fault: Fault) -> anyhow::Result<Row> {
    let run = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let events: Vec<_> = (0..EVENTS)
        .map(|i| sender::joined(MEETING, &run, i))
        .collect();
    let url = format!("{}/v1/whereby", stack.ingest_url);
    let sending = tokio::spawn(async move { sender::paced(&url, SECRET, events, RATE, 2).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    inject(stack, fault).await?;
    let recovered = Instant::now();
    let sent: Vec<Sent> = sending.await?;
    let accepted: HashSet<String> = sent
        .iter()
        .filter(|s| s.accepted)
        .map(|s| s.id.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut applied = stack.applied(&run).await.unwrap_or_default();
    while !accepted.is_subset(&applied) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        applied = stack.applied(&run).await.unwrap_or_default();
    }
    let recovery = recovered.elapsed().as_secs_f64();
    let effects = stack.effects(&run).await.unwrap_or(0);
    let lost = accepted.difference(&applied).count();
    let row = Row {
        scenario: name.to_owned(),
        sent: sent.len(),
        accepted: accepted.len(),
        applied: applied.intersection(&accepted).count(),
        applied_unacknowledged: applied.difference(&accepted).count(),
        duplicates: effects.saturating_sub(applied.len()),
        lost,
        recovery_seconds: recovery,
        passed: lost == 0 && effects == applied.len() && !accepted.is_empty(),
    };
    Ok(row)
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
        passed: rows == created && at_whereby == rows && created > 0,
    })
}

pub async fn run(only: Option<&str>) -> anyhow::Result<Vec<Row>> {
    let mut stack = Stack::start().await?;
    let scenarios: [(&str, Option<Fault>); 10] = [
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
        ("s3-sqs-unreachable", None),
        ("whereby-429-and-5xx", None),
    ];
    let mut rows = Vec::new();
    for (name, fault) in scenarios {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let row = match (name, fault) {
            (_, Some(f)) => webhook_scenario(&mut stack, name, f).await?,
            ("s3-sqs-unreachable", None) => storage_scenario(&mut stack).await?,
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
        "| scenario | sent | accepted | applied | applied, not acked | duplicates | lost | recovery (s) | result |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |\n",
            r.scenario,
            r.sent,
            r.accepted,
            r.applied,
            r.applied_unacknowledged,
            r.duplicates,
            r.lost,
            r.recovery_seconds,
            if r.passed { "pass" } else { "FAIL" }
        ));
    }
    out
}
