//! A whole system on this machine for the fault suite: a private PostgreSQL cluster
//! and RabbitMQ node (so faults never touch the machine's services), the S3/SQS
//! emulator behind a proxy that can be cut, the Whereby stand-in, and the services
//! as processes.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use test_support::{PrivatePostgres, PrivateRabbit, TestAws};

use crate::{
    procs::{Proc, free_port, wait_ready},
    proxy::Proxy,
};

pub const SECRET: &str = "chaos-webhook-secret";
pub const API_KEY: &str = "chaos-whereby-key";
pub const JWT_SECRET: &str = "chaos-jwt-secret-that-is-long-enough-0123";
pub const MEETING: &str = "chaos-meeting-1";
/// Meetings for the scenarios whose events must touch several rows each.
pub const MEETINGS: [&str; 4] = [
    MEETING,
    "chaos-meeting-2",
    "chaos-meeting-3",
    "chaos-meeting-4",
];

/// Where PostgreSQL and RabbitMQ run for a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engines {
    /// A private PostgreSQL cluster and RabbitMQ node, started for the stack (the
    /// fault suite breaks them; nothing else shares them).
    Private,
    /// The machine's PostgreSQL (a fresh database) and RabbitMQ (a fresh prefix),
    /// run separately as a deployment's are.
    Machine,
}

impl Engines {
    pub fn label(self) -> &'static str {
        match self {
            Self::Private => "private PostgreSQL and RabbitMQ",
            Self::Machine => "the machine's PostgreSQL and RabbitMQ",
        }
    }
}

/// The machine's servers (`make bench` starts them when they are not running).
const MACHINE_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
const MACHINE_RABBITMQ: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub struct Stack {
    pub dir: PathBuf,
    pub engines: Engines,
    /// Only with [`Engines::Private`] (the fault suite's).
    private: Option<(PrivatePostgres, PrivateRabbit)>,
    pub amqp_url: String,
    /// The root processes of PostgreSQL and RabbitMQ, for their CPU time.
    pub postgres_pid: Option<u32>,
    pub rabbitmq_pid: Option<u32>,
    pub aws: TestAws,
    pub aws_proxy: Proxy,
    /// Between the services and PostgreSQL (the harness itself connects directly).
    pub pg_proxy: Proxy,
    pub env: HashMap<String, String>,
    pub db_url: String,
    pub ingest_url: String,
    pub worker_url: String,
    pub worker2_url: String,
    pub room_api_url: String,
    pub stand_in_url: String,
    pub ingest: Option<Proc>,
    pub worker: Option<Proc>,
    /// A second replica, for the scenarios that need two.
    pub worker2: Option<Proc>,
    pub room_api: Option<Proc>,
    pub stand_in: Option<Proc>,
}

pub async fn exec(url: &str, sql: &str) -> anyhow::Result<usize> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    Ok(diesel::sql_query(sql).execute(&mut conn).await?)
}

/// The room and the meetings the fault suites' events are for.
pub async fn seed_meetings(db_url: &str) -> anyhow::Result<()> {
    exec(db_url, "INSERT INTO rooms (id, name, owner) VALUES ('00000000-0000-0000-0000-0000000000c1', 'chaos', 'ops')").await?;
    for (i, meeting) in MEETINGS.iter().enumerate() {
        // The first one is the recordings' meeting (room name `/chaos-room`).
        let room_name = if i == 0 {
            "/chaos-room".to_owned()
        } else {
            format!("/chaos-room-{i}")
        };
        exec(db_url, &format!("INSERT INTO meetings (id, room_id, owner, whereby_meeting_id, room_name, room_url, start_date, end_date, is_locked, room_mode, recording_type, recording_trigger, platform) VALUES (gen_random_uuid(), '00000000-0000-0000-0000-0000000000c1', 'ops', '{meeting}', '{room_name}', 'https://x{room_name}', now() - interval '1 hour', now() + interval '8 hours', false, 'normal', 'cloud', 'none', 'whereby')")).await?;
    }
    Ok(())
}

impl Stack {
    /// `db_through_proxy`: the services reach PostgreSQL through a proxy that the
    /// fault suite can cut or stall; the benchmark connects them directly, so that
    /// no extra hop is measured.
    pub async fn start(db_through_proxy: bool) -> anyhow::Result<Self> {
        Self::start_on(Engines::Private, db_through_proxy).await
    }

    pub async fn start_on(engines: Engines, db_through_proxy: bool) -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("whereby-chaos-{id}"));
        std::fs::create_dir_all(&dir)?;
        let (private, server_url, database, amqp_url, prefix, rabbitmq_pid) = match engines {
            Engines::Private => {
                let (pg, rabbit) = (PrivatePostgres::start(), PrivateRabbit::start());
                let (server, amqp, pid) = (pg.url("postgres"), rabbit.url(), rabbit.os_pid());
                (
                    Some((pg, rabbit)),
                    server,
                    "whereby".to_owned(),
                    amqp,
                    String::new(),
                    pid,
                )
            }
            Engines::Machine => (
                None,
                format!("{MACHINE_POSTGRES}/postgres"),
                format!("whereby_bench_{}", &id[..12]),
                MACHINE_RABBITMQ.to_owned(),
                format!("bench{}.", &id[..12]),
                crate::cpu::listening_on(5672),
            ),
        };
        exec(&server_url, &format!("CREATE DATABASE {database}")).await?;
        let db_url = match server_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{database}"),
            None => anyhow::bail!("no database in {server_url}"),
        };
        exec(&db_url, "SELECT 1").await?;
        let postgres_pid = postmaster_pid(&db_url).await;
        let db_port = db_url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .unwrap_or("5432")
            .to_owned();
        let aws = TestAws::new().await;
        let aws_proxy = Proxy::start(&test_support::aws::endpoint()).await?;
        let pg_proxy = Proxy::start(&format!("127.0.0.1:{db_port}")).await?;
        let (ingest_port, worker_port, worker2_port, api_port, stand_in_port) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let env: HashMap<String, String> = [
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "info".to_owned()),
            (
                "DATABASE_URL",
                if db_through_proxy {
                    format!(
                        "postgres://postgres@127.0.0.1:{}/{database}",
                        pg_proxy.port()
                    )
                } else {
                    db_url.clone()
                },
            ),
            // The benchmark's rejection phase measures the 401 path from one
            // address; the limiter would answer most of it 429.
            ("WEBHOOK_FAILURE_BURST", "100000".to_owned()),
            ("DATABASE_TIMEOUT_SECONDS", "2".to_owned()),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "2000".to_owned()),
            ("WORKER_FAULT_INJECTION", "true".to_owned()),
            ("AMQP_URL", amqp_url.clone()),
            ("AMQP_PREFIX", prefix),
            ("AMQP_PUBLISH_TIMEOUT_MS", "3000".to_owned()),
            ("AMQP_RETRY_DELAYS_MS", "300,600,900".to_owned()),
            ("WHEREBY_API_KEY", API_KEY.to_owned()),
            (
                "WHEREBY_API_URL",
                format!("http://127.0.0.1:{stand_in_port}/v1"),
            ),
            ("WHEREBY_MAX_RETRY_AFTER_SECONDS", "2".to_owned()),
            ("WHEREBY_WEBHOOK_SECRET", SECRET.to_owned()),
            ("AUTH_JWT_SECRET", JWT_SECRET.to_owned()),
            ("RECORDING_STORAGE_AWS_BUCKET_NAME", aws.bucket.clone()),
            ("AWS_WHEREBY_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_WHEREBY_ACCESS_KEY_SECRET", "test".to_owned()),
            ("AWS_PROCESS_RECORDING_QUEUE_URL", aws.queue_url.clone()),
            ("AWS_ENDPOINT_URL", aws_proxy.url()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("SQS_POLLING_TIMEOUT_SECONDS", "1".to_owned()),
            ("SQS_VISIBILITY_TIMEOUT_SECONDS", "5".to_owned()),
            ("JOB_SCAN_INTERVAL_SECONDS", "0".to_owned()),
            ("JOB_RETENTION_INTERVAL_SECONDS", "0".to_owned()),
            ("JOB_MEETING_CLEANUP_INTERVAL_SECONDS", "0".to_owned()),
            ("JOB_PERSONAL_DATA_INTERVAL_SECONDS", "0".to_owned()),
            ("WEBHOOK_INGEST_ADDR", format!("127.0.0.1:{ingest_port}")),
            ("WEBHOOK_INGEST_SHUTDOWN_SECONDS", "10".to_owned()),
            ("WORKER_ADDR", format!("127.0.0.1:{worker_port}")),
            ("ROOM_API_ADDR", format!("127.0.0.1:{api_port}")),
            (
                "WHEREBY_STAND_IN_ADDR",
                format!("127.0.0.1:{stand_in_port}"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut stack = Self {
            dir,
            engines,
            private,
            amqp_url,
            postgres_pid,
            rabbitmq_pid,
            aws,
            aws_proxy,
            pg_proxy,
            env,
            db_url,
            ingest_url: format!("http://127.0.0.1:{ingest_port}"),
            worker_url: format!("http://127.0.0.1:{worker_port}"),
            worker2_url: format!("http://127.0.0.1:{worker2_port}"),
            room_api_url: format!("http://127.0.0.1:{api_port}"),
            stand_in_url: format!("http://127.0.0.1:{stand_in_port}"),
            ingest: None,
            worker: None,
            worker2: None,
            room_api: None,
            stand_in: None,
        };
        // The worker migrates on its first start; then the meeting events are for.
        stack.start_worker().await?;
        seed_meetings(&stack.db_url).await?;
        stack.start_ingest().await?;
        Ok(stack)
    }

    /// The private PostgreSQL (fault suite only: a stack on the machine's engines
    /// must not break them).
    pub fn pg(&self) -> &PrivatePostgres {
        match &self.private {
            Some((pg, _)) => pg,
            None => panic!("a fault on the machine's PostgreSQL: only private engines"),
        }
    }

    /// The private RabbitMQ node (fault suite only).
    pub fn rabbit(&self) -> &PrivateRabbit {
        match &self.private {
            Some((_, rabbit)) => rabbit,
            None => panic!("a fault on the machine's RabbitMQ: only private engines"),
        }
    }

    /// CPU seconds PostgreSQL and RabbitMQ (each with its child processes) have
    /// used so far.
    pub fn engine_cpu_seconds(&self) -> (f64, f64) {
        let of = |pid: Option<u32>| pid.map_or(0.0, crate::cpu::tree_seconds);
        (of(self.postgres_pid), of(self.rabbitmq_pid))
    }

    /// On the machine's engines: drops the database and deletes the queues made
    /// for this stack (the services are stopped first).
    pub async fn release_machine_engines(&mut self) -> anyhow::Result<()> {
        if self.engines != Engines::Machine {
            return Ok(());
        }
        for p in [
            &mut self.ingest,
            &mut self.worker,
            &mut self.worker2,
            &mut self.room_api,
        ]
        .into_iter()
        .flatten()
        {
            p.kill();
        }
        let prefix = self.env.get("AMQP_PREFIX").cloned().unwrap_or_default();
        let amqp = settings::AmqpSettings {
            amqp_prefix: prefix,
            ..test_support::TestEnv::new().section()?
        };
        let topology = messaging::Topology::from_settings(&amqp);
        let conn = messaging::connect(&self.amqp_url, "bench", Duration::from_secs(5)).await?;
        let channel = conn.create_channel().await?;
        topology.delete(&channel).await?;
        let _ = conn.close(200, "bye".into()).await;
        let database = self
            .db_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        exec(
            &format!("{MACHINE_POSTGRES}/postgres"),
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        )
        .await?;
        Ok(())
    }

    pub async fn start_ingest(&mut self) -> anyhow::Result<()> {
        self.ingest = Some(Proc::start("webhook-ingest", &self.env, &self.dir)?);
        wait_ready(
            &format!("{}/readyz", self.ingest_url),
            Duration::from_secs(30),
        )
        .await
    }

    pub async fn start_worker(&mut self) -> anyhow::Result<()> {
        self.worker = Some(Proc::start("recording-worker", &self.env, &self.dir)?);
        wait_ready(
            &format!("{}/healthz", self.worker_url),
            Duration::from_secs(30),
        )
        .await
    }

    /// Until ingest and the worker both answer ready.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        for url in [&self.ingest_url, &self.worker_url] {
            wait_ready(&format!("{url}/readyz"), Duration::from_secs(60)).await?;
        }
        Ok(())
    }

    /// A second worker replica on its own port.
    pub async fn start_worker2(&mut self) -> anyhow::Result<()> {
        let mut env = self.env.clone();
        env.insert(
            "WORKER_ADDR".to_owned(),
            self.worker2_url.trim_start_matches("http://").to_owned(),
        );
        self.worker2 = Some(Proc::start("recording-worker", &env, &self.dir)?);
        wait_ready(
            &format!("{}/healthz", self.worker2_url),
            Duration::from_secs(30),
        )
        .await
    }

    /// Messages in the webhook dead-letter queue now.
    pub async fn dead_lettered(&self) -> anyhow::Result<u32> {
        let prefix = self.env.get("AMQP_PREFIX").cloned().unwrap_or_default();
        let conn = messaging::connect(&self.amqp_url, "chaos", Duration::from_secs(5)).await?;
        let channel = conn.create_channel().await?;
        let q = channel
            .queue_declare(
                format!("{prefix}whereby.events.dead").as_str().into(),
                messaging::lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                messaging::lapin::types::FieldTable::default(),
            )
            .await?;
        let _ = conn.close(200, "bye".into()).await;
        Ok(q.message_count())
    }

    /// One number from a query (`SELECT … AS n`, a bigint).
    pub async fn scalar(&self, sql: &str) -> anyhow::Result<i64> {
        scalar_in(&self.db_url, sql).await
    }

    pub async fn start_room_api(&mut self) -> anyhow::Result<()> {
        if self.stand_in.is_none() {
            self.stand_in = Some(Proc::start("whereby-stand-in", &self.env, &self.dir)?);
        }
        self.room_api = Some(Proc::start("room-api", &self.env, &self.dir)?);
        wait_ready(
            &format!("{}/readyz", self.room_api_url),
            Duration::from_secs(30),
        )
        .await
    }

    /// Event ids with this prefix in the inbox.
    pub async fn applied(&self, prefix: &str) -> anyhow::Result<HashSet<String>> {
        applied_in(&self.db_url, prefix).await
    }

    /// Participant rows the events with this prefix produced (one per event).
    pub async fn effects(&self, prefix: &str) -> anyhow::Result<usize> {
        effects_in(&self.db_url, prefix).await
    }
}

/// PostgreSQL's main process, from `postmaster.pid` in its data directory.
async fn postmaster_pid(db_url: &str) -> Option<u32> {
    #[derive(diesel::QueryableByName)]
    struct Dir {
        #[diesel(sql_type = diesel::sql_types::Text)]
        setting: String,
    }
    let mut conn = AsyncPgConnection::establish(db_url).await.ok()?;
    let rows: Vec<Dir> =
        diesel::sql_query("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
            .load(&mut conn)
            .await
            .ok()?;
    let dir = rows.into_iter().next()?.setting;
    std::fs::read_to_string(std::path::Path::new(&dir).join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// One number from a query (`SELECT … AS n`, a bigint).
pub async fn scalar_in(db_url: &str, sql: &str) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(db_url).await?;
    let rows: Vec<N> = diesel::sql_query(sql).load(&mut conn).await?;
    Ok(rows.into_iter().next().map_or(0, |r| r.n))
}

/// Event ids with this prefix in the inbox.
pub async fn applied_in(db_url: &str, prefix: &str) -> anyhow::Result<HashSet<String>> {
    use diesel::QueryableByName;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_id: String,
    }
    let mut conn = AsyncPgConnection::establish(db_url).await?;
    let rows: Vec<Row> =
        diesel::sql_query("SELECT event_id FROM webhook_events WHERE event_id LIKE $1")
            .bind::<diesel::sql_types::Text, _>(format!("{prefix}-%"))
            .load(&mut conn)
            .await?;
    Ok(rows.into_iter().map(|r| r.event_id).collect())
}

/// Participant rows the events with this prefix produced (one per event).
pub async fn effects_in(db_url: &str, prefix: &str) -> anyhow::Result<usize> {
    exec(
        db_url,
        &format!("SELECT 1 FROM meeting_participants WHERE participant_id LIKE 'p-{prefix}-%'"),
    )
    .await
}

impl Drop for Stack {
    fn drop(&mut self) {
        for p in [
            &mut self.ingest,
            &mut self.worker,
            &mut self.worker2,
            &mut self.room_api,
            &mut self.stand_in,
        ]
        .into_iter()
        .flatten()
        {
            p.kill();
        }
        // CHAOS_KEEP_LOGS keeps the services' logs for a post-mortem.
        if std::env::var_os("CHAOS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}
