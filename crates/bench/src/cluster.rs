//! `whereby-bench cluster-chaos`: the engines production runs, on this machine.
//! Three RabbitMQ nodes in one cluster, a PostgreSQL primary with a streaming
//! standby (`pg_basebackup -R`), and two replicas of every service as processes,
//! all private instances. A Whereby-like sender spreads signed webhooks over the two
//! ingest replicas as a load balancer would (a retry may land on the other one),
//! with Whereby's rule: at most two retries, seconds apart.
//!
//! Each scenario is judged like `make chaos` (accepted = applied exactly once;
//! lost 0; duplicates 0) and by the longest window in which ingest answered
//! anything but 200, and the events finally refused after the two retries.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use serde::Serialize;
use test_support::{PrivatePostgresPair, PrivateRabbitCluster, TestAws};

use crate::{
    procs::{Proc, free_port, wait_ready},
    sender::{self, Answer},
    stack::{self, API_KEY, JWT_SECRET, MEETINGS, SECRET},
};

/// Two of each service on the cluster engines.
pub struct ClusterStack {
    pub dir: PathBuf,
    pub rabbit: PrivateRabbitCluster,
    pub pg: PrivatePostgresPair,
    pub aws: TestAws,
    pub env: HashMap<String, String>,
    pub ingest: Vec<Replica>,
    pub workers: Vec<Replica>,
    pub room_apis: Vec<Replica>,
    pub stand_in: Option<Proc>,
    pub stand_in_url: String,
}

/// One replica of a service: its process (when running) and its address.
pub struct Replica {
    pub name: &'static str,
    pub url: String,
    pub addr_key: &'static str,
    pub proc: Option<Proc>,
}

impl ClusterStack {
    pub async fn start() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("whereby-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let rabbit = tokio::task::spawn_blocking(|| PrivateRabbitCluster::start(3)).await?;
        let pg = tokio::task::spawn_blocking(PrivatePostgresPair::start).await?;
        stack::exec(&pg.primary.url("postgres"), "CREATE DATABASE whereby").await?;
        let aws = TestAws::new().await;
        let stand_in_port = free_port();
        let env: HashMap<String, String> = [
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "info".to_owned()),
            ("DATABASE_URL", pg.url("whereby")),
            ("DATABASE_TIMEOUT_SECONDS", "2".to_owned()),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "2000".to_owned()),
            ("WEBHOOK_FAILURE_BURST", "100000".to_owned()),
            ("AMQP_URL", rabbit.urls()),
            ("AMQP_QUORUM_INITIAL_GROUP_SIZE", "3".to_owned()),
            ("AMQP_CONNECT_TIMEOUT_SECONDS", "2".to_owned()),
            ("AMQP_RETRY_DELAYS_MS", "300,600,900".to_owned()),
            ("WHEREBY_API_KEY", API_KEY.to_owned()),
            (
                "WHEREBY_API_URL",
                format!("http://127.0.0.1:{stand_in_port}/v1"),
            ),
            ("WHEREBY_WEBHOOK_SECRET", SECRET.to_owned()),
            ("AUTH_JWT_SECRET", JWT_SECRET.to_owned()),
            ("RECORDING_STORAGE_AWS_BUCKET_NAME", aws.bucket.clone()),
            ("AWS_WHEREBY_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_WHEREBY_ACCESS_KEY_SECRET", "test".to_owned()),
            ("AWS_ENDPOINT_URL", test_support::aws::endpoint()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("JOB_SCAN_INTERVAL_SECONDS", "0".to_owned()),
            ("JOB_RETENTION_INTERVAL_SECONDS", "0".to_owned()),
            ("JOB_MEETING_CLEANUP_INTERVAL_SECONDS", "0".to_owned()),
            ("JOB_PERSONAL_DATA_INTERVAL_SECONDS", "0".to_owned()),
            ("WEBHOOK_INGEST_SHUTDOWN_SECONDS", "5".to_owned()),
            ("BRANDING_RETRY_SECONDS", "0".to_owned()),
            (
                "WHEREBY_STAND_IN_ADDR",
                format!("127.0.0.1:{stand_in_port}"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let replicas = |name: &'static str, addr_key: &'static str| {
            (0..2)
                .map(|_| Replica {
                    name,
                    url: format!("http://127.0.0.1:{}", free_port()),
                    addr_key,
                    proc: None,
                })
                .collect::<Vec<_>>()
        };
        let mut stack = Self {
            dir,
            rabbit,
            pg,
            aws,
            env,
            ingest: replicas("webhook-ingest", "WEBHOOK_INGEST_ADDR"),
            workers: replicas("recording-worker", "WORKER_ADDR"),
            room_apis: replicas("room-api", "ROOM_API_ADDR"),
            stand_in: None,
            stand_in_url: format!("http://127.0.0.1:{stand_in_port}"),
        };
        stack.stand_in = Some(Proc::start("whereby-stand-in", &stack.env, &stack.dir)?);
        // The first worker migrates; then the meetings the events are for.
        stack.start_replica(Kind::Worker, 0).await?;
        stack::seed_meetings(&stack.db_url()).await?;
        stack.start_replica(Kind::Worker, 1).await?;
        for i in 0..2 {
            stack.start_replica(Kind::Ingest, i).await?;
            stack.start_replica(Kind::RoomApi, i).await?;
        }
        Ok(stack)
    }

    /// The primary's URL now (for the harness's own queries).
    pub fn db_url(&self) -> String {
        self.pg.primary.url("whereby")
    }

    fn replicas(&mut self, kind: Kind) -> &mut Vec<Replica> {
        match kind {
            Kind::Ingest => &mut self.ingest,
            Kind::Worker => &mut self.workers,
            Kind::RoomApi => &mut self.room_apis,
        }
    }

    pub async fn start_replica(&mut self, kind: Kind, i: usize) -> anyhow::Result<()> {
        let mut env = self.env.clone();
        let dir = self.dir.clone();
        let replica = self
            .replicas(kind)
            .get_mut(i)
            .ok_or_else(|| anyhow::anyhow!("no replica {i}"))?;
        env.insert(
            replica.addr_key.to_owned(),
            replica.url.trim_start_matches("http://").to_owned(),
        );
        replica.proc = Some(Proc::start(replica.name, &env, &dir)?);
        let url = format!("{}/readyz", replica.url);
        wait_ready(&url, Duration::from_secs(60)).await
    }

    pub fn kill(&mut self, kind: Kind, i: usize) {
        if let Some(p) = self.replicas(kind).get_mut(i).and_then(|r| r.proc.as_mut()) {
            p.kill();
        }
    }

    /// Until every running replica answers ready.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        for r in self
            .ingest
            .iter()
            .chain(&self.workers)
            .chain(&self.room_apis)
        {
            if r.proc.is_some() {
                wait_ready(&format!("{}/readyz", r.url), Duration::from_secs(90)).await?;
            }
        }
        Ok(())
    }

    pub fn ingest_urls(&self) -> Vec<String> {
        self.ingest
            .iter()
            .map(|r| format!("{}/v1/whereby", r.url))
            .collect()
    }
}

impl Drop for ClusterStack {
    fn drop(&mut self) {
        for r in self
            .ingest
            .iter_mut()
            .chain(&mut self.workers)
            .chain(&mut self.room_apis)
        {
            if let Some(p) = r.proc.as_mut() {
                p.kill();
            }
        }
        if let Some(p) = self.stand_in.as_mut() {
            p.kill();
        }
        if std::env::var_os("CHAOS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Ingest,
    Worker,
    RoomApi,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterRow {
    pub scenario: String,
    pub sent: usize,
    pub accepted: usize,
    /// Refused for good: no 200 after Whereby's two retries.
    pub refused_after_retries: usize,
    pub applied: usize,
    pub duplicates: usize,
    pub lost: usize,
    /// The longest time in which every answer ingest gave was not a 200.
    pub longest_non_200_seconds: f64,
    /// From the end of the fault until everything accepted was applied.
    /// The longest an accepted event took from its 200 to its row in Postgres.
    pub max_lag_seconds: f64,
    pub detail: String,
    pub passed: bool,
}

/// The longest stretch from a failed answer to the next 200.
fn longest_non_200(answers: &mut [Answer]) -> Duration {
    answers.sort_by_key(|a| a.at);
    let mut longest = Duration::ZERO;
    let mut failing_since: Option<Duration> = None;
    for a in answers.iter() {
        match (a.ok, failing_since) {
            (false, None) => failing_since = Some(a.at),
            (true, Some(since)) => {
                longest = longest.max(a.at.saturating_sub(since));
                failing_since = None;
            }
            _ => {}
        }
    }
    if let (Some(since), Some(last)) = (failing_since, answers.last()) {
        longest = longest.max(last.at.saturating_sub(since));
    }
    longest
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    LeaderStopped,
    NodeKilled,
    RollingRestart,
    NodePaused,
    PostgresPromoted,
    IngestKilled,
    WorkerKilledDuringBacklog,
}

const EVENTS: usize = 900;
const RATE: f64 = 50.0;

/// What the fault needs the judge to know.
struct Injected {
    detail: String,
}

/// The node that leads `queue`: a fault "on the leader" must hit the leader.
fn leader_of(stack: &ClusterStack, queue: &str) -> anyhow::Result<usize> {
    stack
        .rabbit
        .leader_of(queue)
        .ok_or_else(|| anyhow::anyhow!("no node says which one leads {queue}"))
}

async fn inject(stack: &mut ClusterStack, fault: Fault, run: &str) -> anyhow::Result<Injected> {
    let queue = "whereby.events.worker";
    let detail = match fault {
        Fault::LeaderStopped => {
            let leader = leader_of(stack, queue)?;
            let node = &stack.rabbit.nodes[leader];
            tokio::task::block_in_place(|| node.stop_app());
            tokio::time::sleep(Duration::from_secs(5)).await;
            tokio::task::block_in_place(|| node.start_app());
            format!(
                "leader node {} stopped 5 s; leader now {:?}",
                leader + 1,
                stack.rabbit.leader_of(queue).map(|l| l + 1)
            )
        }
        Fault::NodeKilled => {
            let leader = leader_of(stack, queue)?;
            let node = &stack.rabbit.nodes[leader];
            tokio::task::block_in_place(|| node.kill());
            tokio::time::sleep(Duration::from_secs(5)).await;
            tokio::task::block_in_place(|| node.launch());
            format!(
                "node {} (the leader) killed -9, relaunched after 5 s",
                leader + 1
            )
        }
        Fault::RollingRestart => {
            for node in &stack.rabbit.nodes {
                tokio::task::block_in_place(|| {
                    node.stop_app();
                    std::thread::sleep(Duration::from_secs(2));
                    node.start_app();
                });
                let rabbit = &stack.rabbit;
                tokio::task::block_in_place(|| rabbit.wait_until_running(3));
            }
            "each node stopped 2 s in turn".to_owned()
        }
        Fault::NodePaused => {
            let leader = leader_of(stack, queue)?;
            let node = &stack.rabbit.nodes[leader];
            node.pause();
            tokio::time::sleep(Duration::from_secs(20)).await;
            node.resume();
            format!(
                "node {} (the leader) paused 20 s (SIGSTOP; past the net tick)",
                leader + 1
            )
        }
        Fault::PostgresPromoted => {
            let pg = &mut stack.pg;
            tokio::task::block_in_place(|| pg.fail_over());
            let pg = &stack.pg;
            tokio::task::block_in_place(|| pg.rebuild_standby());
            return Ok(Injected {
                detail: "primary stopped, standby promoted; old primary rebuilt as standby"
                    .to_owned(),
            });
        }
        Fault::IngestKilled => {
            stack.kill(Kind::Ingest, 0);
            tokio::time::sleep(Duration::from_secs(3)).await;
            stack.start_replica(Kind::Ingest, 0).await?;
            "ingest replica 1 killed -9, restarted after 3 s".to_owned()
        }
        Fault::WorkerKilledDuringBacklog => {
            // Both workers drain what queued up while they were away; one dies mid-way.
            tokio::time::sleep(Duration::from_secs(3)).await;
            stack.kill(Kind::Worker, 1);
            tokio::time::sleep(Duration::from_secs(2)).await;
            stack.start_replica(Kind::Worker, 1).await?;
            format!("worker 2 killed -9 while both drained ({run})")
        }
    };
    Ok(Injected { detail })
}

async fn webhook_scenario(
    stack: &mut ClusterStack,
    name: &str,
    fault: Fault,
) -> anyhow::Result<ClusterRow> {
    let run = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let events: Vec<_> = (0..EVENTS)
        .map(|i| sender::joined(MEETINGS[i % MEETINGS.len()], &run, i))
        .collect();
    stack.wait_ready().await?;
    if matches!(fault, Fault::WorkerKilledDuringBacklog) {
        stack.kill(Kind::Worker, 0);
        stack.kill(Kind::Worker, 1);
    }
    let sending = tokio::spawn(sender::paced_over(
        stack.ingest_urls(),
        SECRET,
        events,
        RATE,
        2,
    ));
    if matches!(fault, Fault::WorkerKilledDuringBacklog) {
        // A backlog builds for five seconds; then both workers start on it.
        tokio::time::sleep(Duration::from_secs(5)).await;
        stack.start_replica(Kind::Worker, 0).await?;
        stack.start_replica(Kind::Worker, 1).await?;
    } else {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let injected = inject(stack, fault, &run).await?;
    let (sent, mut answers) = sending.await?;
    let accepted: HashSet<String> = sent
        .iter()
        .filter(|s| s.accepted)
        .map(|s| s.id.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut applied = stack::applied_in(&stack.db_url(), &run)
        .await
        .unwrap_or_default();
    while !accepted.is_subset(&applied) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        applied = stack::applied_in(&stack.db_url(), &run)
            .await
            .unwrap_or_default();
    }
    let max_lag = crate::bench::e2e_lags(&stack.db_url(), &run, &sent)
        .await?
        .into_iter()
        .max()
        .map_or(0.0, |us| us as f64 / 1e6);
    // Effects beyond applied events, counted in one snapshot: an event the sender
    // was refused may still arrive and be applied while the judge looks (the broker
    // had it), and it must not read as a duplicate.
    let duplicates = stack::scalar_in(
        &stack.db_url(),
        &format!(
            "SELECT (SELECT count(*) FROM meeting_participants WHERE participant_id LIKE 'p-{run}-%') \
             - (SELECT count(*) FROM webhook_events WHERE event_id LIKE '{run}-%') AS n"
        ),
    )
    .await?;
    let lost = accepted.difference(&applied).count();
    let refused = sent.len() - accepted.len();
    let window = longest_non_200(&mut answers);
    // A failover must settle within 30 s; the broker faults must not refuse for good
    // anything Whereby sent (its retries span 1.5 s beyond the answers).
    let targets_met = match fault {
        Fault::PostgresPromoted => max_lag <= 30.0,
        Fault::LeaderStopped
        | Fault::NodeKilled
        | Fault::RollingRestart
        | Fault::NodePaused
        | Fault::IngestKilled => refused == 0,
        Fault::WorkerKilledDuringBacklog => true,
    };
    Ok(ClusterRow {
        scenario: name.to_owned(),
        sent: sent.len(),
        accepted: accepted.len(),
        refused_after_retries: refused,
        applied: applied.intersection(&accepted).count(),
        duplicates: usize::try_from(duplicates).unwrap_or(0),
        lost,
        longest_non_200_seconds: window.as_secs_f64(),
        max_lag_seconds: max_lag,
        detail: injected.detail,
        passed: lost == 0 && duplicates == 0 && !accepted.is_empty() && targets_met,
    })
}

/// Two room-api replicas asked concurrently for the meetings of the same rooms:
/// one Whereby meeting per room.
async fn meetings_scenario(stack: &mut ClusterStack) -> anyhow::Result<ClusterRow> {
    let token = crate::token(JWT_SECRET, "cluster")?;
    let http = sender::client(64);
    let run = format!(
        "cluster-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let rooms: Vec<String> = (0..20).map(|i| format!("{run}-{i}")).collect();
    let api = |i: usize| stack.room_apis[i % 2].url.clone();
    for (i, room) in rooms.iter().enumerate() {
        let res = http
            .post(format!("{}/v1/rooms", api(i)))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": room}))
            .send()
            .await?;
        anyhow::ensure!(
            res.status().as_u16() == 201,
            "create {room}: {}",
            res.status()
        );
    }
    let mut asks = Vec::new();
    for (i, room) in rooms.iter().enumerate() {
        for k in 0..4 {
            let (http, url, token, room) = (
                http.clone(),
                format!("{}/v1/rooms/{room}/meeting", api(i + k)),
                token.clone(),
                room.clone(),
            );
            asks.push(tokio::spawn(async move {
                let res = http.post(url).bearer_auth(token).send().await.ok()?;
                let body: serde_json::Value = res.json().await.ok()?;
                Some((room, body["whereby_meeting_id"].as_str()?.to_owned()))
            }));
        }
    }
    let mut per_room: HashMap<String, HashSet<String>> = HashMap::new();
    let mut answered = 0;
    for a in asks {
        if let Ok(Some((room, meeting))) = a.await {
            answered += 1;
            per_room.entry(room).or_default().insert(meeting);
        }
    }
    let rows = stack::scalar_in(
        &stack.db_url(),
        &format!(
            "SELECT count(*) AS n FROM meetings m JOIN rooms r ON r.id = m.room_id WHERE r.name LIKE '{run}-%'"
        ),
    )
    .await?;
    let one_each = per_room.len() == rooms.len() && per_room.values().all(|m| m.len() == 1);
    Ok(ClusterRow {
        scenario: "two-room-apis-same-rooms".to_owned(),
        sent: rooms.len() * 4,
        accepted: answered,
        refused_after_retries: rooms.len() * 4 - answered,
        applied: usize::try_from(rows).unwrap_or(0),
        duplicates: usize::try_from(rows)
            .unwrap_or(0)
            .saturating_sub(rooms.len()),
        lost: 0,
        longest_non_200_seconds: 0.0,
        max_lag_seconds: 0.0,
        detail: format!(
            "{} rooms, 4 concurrent asks each over both replicas",
            rooms.len()
        ),
        passed: one_each && usize::try_from(rows).ok() == Some(rooms.len()),
    })
}

/// The scenarios in the order they run; `None`: the meetings scenario.
const SCENARIOS: [(&str, Option<Fault>); 8] = [
    ("rabbitmq-leader-stopped", Some(Fault::LeaderStopped)),
    ("rabbitmq-node-killed", Some(Fault::NodeKilled)),
    ("rabbitmq-rolling-restart", Some(Fault::RollingRestart)),
    ("rabbitmq-node-paused", Some(Fault::NodePaused)),
    ("postgres-promoted", Some(Fault::PostgresPromoted)),
    ("ingest-replica-killed", Some(Fault::IngestKilled)),
    (
        "worker-killed-during-backlog",
        Some(Fault::WorkerKilledDuringBacklog),
    ),
    ("two-room-apis-same-rooms", None),
];

pub async fn run(only: Option<&str>) -> anyhow::Result<Vec<ClusterRow>> {
    if let Some(unknown) = only.and_then(|o| {
        o.split(',')
            .find(|n| !SCENARIOS.iter().any(|(name, _)| name == n))
    }) {
        anyhow::bail!("no scenario {unknown:?}");
    }
    let mut stack = ClusterStack::start().await?;
    let mut rows = Vec::new();
    for (name, fault) in SCENARIOS {
        if only.is_some_and(|o| !o.split(',').any(|n| n == name)) {
            continue;
        }
        let row = match fault {
            Some(f) => webhook_scenario(&mut stack, name, f).await?,
            None => meetings_scenario(&mut stack).await?,
        };
        eprintln!(
            "{}: {} (non-200 window {:.1} s, refused {})",
            row.scenario,
            if row.passed { "ok" } else { "FAILED" },
            row.longest_non_200_seconds,
            row.refused_after_retries
        );
        rows.push(row);
    }
    Ok(rows)
}

pub fn table(rows: &[ClusterRow]) -> String {
    let mut out = String::from(
        "| scenario | sent | accepted | refused after 2 retries | applied | duplicates | lost | longest non-200 (s) | longest 200 to applied (s) | fault | result |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {} |\n",
            r.scenario,
            r.sent,
            r.accepted,
            r.refused_after_retries,
            r.applied,
            r.duplicates,
            r.lost,
            r.longest_non_200_seconds,
            r.max_lag_seconds,
            r.detail,
            if r.passed { "pass" } else { "FAIL" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_non_200_window_runs_from_the_first_failure_to_the_next_success() {
        let at = |ms: u64, ok: bool| Answer {
            at: Duration::from_millis(ms),
            ok,
        };
        let mut answers = vec![
            at(0, true),
            at(100, false),
            at(900, false),
            at(1_500, true),
            at(2_000, false),
            at(2_100, true),
        ];
        assert_eq!(longest_non_200(&mut answers), Duration::from_millis(1_400));
        let mut trailing = vec![at(0, true), at(100, false), at(3_100, false)];
        assert_eq!(longest_non_200(&mut trailing), Duration::from_millis(3_000));
        assert_eq!(longest_non_200(&mut []), Duration::ZERO);
    }
}
