//! The load benchmark. Every phase drives the running services over HTTP for a
//! fixed duration after a warm-up and measures what the caller sees.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::json;

use crate::{
    pipeline::{self, PipelineFigures, PipelineLoad},
    report, sender,
    stack::{self, Engines, MEETING, SECRET, Stack},
};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: usize,
}

pub(crate) fn summarize(mut micros: Vec<u64>, errors: usize, seconds: f64) -> Latency {
    micros.sort_unstable();
    let pick = |q: f64| {
        if micros.is_empty() {
            0.0
        } else {
            micros[((micros.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
        }
    };
    Latency {
        count: micros.len(),
        per_second: micros.len() as f64 / seconds,
        p50_ms: pick(0.50),
        p90_ms: pick(0.90),
        p99_ms: pick(0.99),
        max_ms: micros.last().copied().unwrap_or(0) as f64 / 1000.0,
        errors,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub service: String,
    pub peak_rss_mib: f64,
    pub cpu_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: String,
    pub duration_seconds: u64,
    pub connections: usize,
    pub ingest_closed_loop: Latency,
    pub ingest_open_loop_rate: f64,
    pub ingest_open_loop: Latency,
    pub ingest_rejected_signatures: Latency,
    pub backlog_events: usize,
    pub backlog_drain_seconds: f64,
    pub worker_events_per_second: f64,
    pub e2e_rate: f64,
    pub e2e_lag: Latency,
    pub room_creation: Latency,
    pub meeting_creation: Latency,
    pub meeting_reads: Latency,
    pub meeting_reuse: Latency,
    pub idle_rss_mib: Vec<Usage>,
    pub usage: Vec<Usage>,
    /// The single broker's CPU per 1000 events accepted in the closed-loop phase.
    pub broker_cpu_ms_per_event: f64,
    /// `--cluster`: the same phases on cluster engines.
    pub cluster: Option<ClusterFigures>,
    /// Ingest and worker together, on each kind of engines asked for.
    pub pipeline: Vec<PipelineFigures>,
    /// Closed-loop ingest latencies (ms), sampled, for the plot.
    #[serde(skip)]
    pub ingest_samples: Vec<f64>,
}

/// The cluster mode's figures (`--cluster`), beside the single-node ones.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterFigures {
    /// Closed loop through two ingest replicas (connections alternate between them)
    /// onto the three-node cluster, quorum queues on all three.
    pub ingest_closed_loop: Latency,
    /// The three nodes' CPU per event accepted in that phase (replicated writes).
    pub broker_cpu_ms_per_event: f64,
    pub ingest_cpu_ms_per_event: f64,
    pub backlog_events: usize,
    pub backlog_drain_seconds: f64,
    /// Applied per second by two workers.
    pub worker_events_per_second: f64,
}

/// Runs `work` on `connections` tasks for `warmup + duration`; returns the
/// latencies (µs) measured after the warm-up and the number of failures.
pub(crate) async fn closed_loop<F, Fut>(
    connections: usize,
    warmup: Duration,
    duration: Duration,
    work: F,
) -> (Vec<u64>, usize)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let work = Arc::new(work);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let work = work.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors, mut n) = (Vec::new(), 0usize, 0u64);
                while Instant::now() < end {
                    let t = Instant::now();
                    let ok = work(c, n).await;
                    n += 1;
                    if t >= measure_from && Instant::now() <= end {
                        if ok {
                            lat.push(t.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    (all, errors)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn usage_of(stack: &Stack) -> Vec<Usage> {
    [
        ("room-api", &stack.room_api),
        ("webhook-ingest", &stack.ingest),
        ("recording-worker", &stack.worker),
    ]
    .into_iter()
    .filter_map(|(name, p)| {
        p.as_ref().map(|p| {
            let (hwm, cpu) = p.usage();
            Usage {
                service: name.to_owned(),
                peak_rss_mib: mib(hwm),
                cpu_seconds: cpu,
            }
        })
    })
    .collect()
}

/// `whereby-bench bench`'s options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where the report goes.
    #[arg(long, default_value = "bench-results")]
    pub out: String,
    /// Seconds of each measured phase.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Concurrent webhook senders.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub connections: u64,
    /// Webhooks per second of the fixed-rate phase.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate: u64,
    /// Events queued for the worker-drain phase.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub backlog: u64,
    /// Then the same ingest and drain phases on cluster engines (three RabbitMQ
    /// nodes, two ingest replicas, two workers), side by side in the report.
    #[arg(long)]
    pub cluster: bool,
    /// Where PostgreSQL and RabbitMQ run for the pipeline phases (ingest and worker
    /// together): private servers, the machine's, or both in turn.
    #[arg(long, value_enum, default_value_t = EngineChoice::Both)]
    pub engines: EngineChoice,
    /// The steady rates of the pipeline phases, events per second, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1000u64, 3000])]
    pub rates: Vec<u64>,
    /// Only some phases, for profiling them: `pipeline` (ingest and worker
    /// together) or `room-api`.
    #[arg(long, value_enum)]
    pub only: Option<OnlyPhases>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OnlyPhases {
    Pipeline,
    RoomApi,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EngineChoice {
    Private,
    Machine,
    Both,
}

impl EngineChoice {
    fn engines(self) -> Vec<Engines> {
        match self {
            Self::Private => vec![Engines::Private],
            Self::Machine => vec![Engines::Machine],
            Self::Both => vec![Engines::Private, Engines::Machine],
        }
    }
}

/// What every phase of one run shares, from the options.
struct Load {
    /// How long each phase is measured.
    duration: Duration,
    warmup: Duration,
    connections: usize,
    /// Webhooks per second of the end-to-end phase.
    rate: f64,
    /// Events queued for the worker-drain phase.
    backlog: usize,
}

impl Load {
    fn from_options(options: &Options) -> Self {
        Self {
            duration: Duration::from_secs(options.duration),
            warmup: Duration::from_secs(2),
            connections: options.connections as usize,
            rate: options.rate as f64,
            backlog: options.backlog as usize,
        }
    }
}

/// Runs the five phases on a single-node stack (then, with `--cluster`, the
/// cluster's) and writes the report to `options.out`.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let load = Load::from_options(&options);
    let pipeline_load = PipelineLoad {
        connections: load.connections,
        warmup: load.warmup,
        duration: load.duration,
        rates: options.rates.iter().map(|r| *r as f64).collect(),
    };
    match options.only {
        Some(OnlyPhases::Pipeline) => {
            let mut figures = Vec::new();
            for engines in options.engines.engines() {
                figures.push(pipeline::measure(engines, &pipeline_load).await?);
            }
            return report::write_pipeline(&figures, &options.out);
        }
        Some(OnlyPhases::RoomApi) => {
            let (stack, _) = start_stack().await?;
            let http = sender::client(load.connections * 2);
            let figures = room_api(&load, &stack, &http).await?;
            return report::write_room_api(&figures, &options.out);
        }
        None => {}
    }
    let (mut stack, idle_rss_mib) = start_stack().await?;
    let url: Arc<str> = format!("{}/v1/whereby", stack.ingest_url).into();
    let http = sender::client(load.connections * 2);

    let ingest_closed = ingest_closed_loop(&load, &stack, &http, &url).await;
    let ingest_open = ingest_open_loop(&load, &http, &url, &ingest_closed).await;
    let backlog = backlog_drain(&load, &mut stack, &http, &url).await?;
    let e2e_lag = end_to_end(&load, &stack, &url).await?;
    let room_api_figures = room_api(&load, &stack, &http).await?;

    let usage = usage_of(&stack);
    drop(stack);
    let mut pipeline = Vec::new();
    for engines in options.engines.engines() {
        pipeline.push(pipeline::measure(engines, &pipeline_load).await?);
    }
    let cluster = if options.cluster {
        Some(cluster_figures(load.connections, load.warmup, load.duration, load.backlog).await?)
    } else {
        None
    };
    let report = Report {
        machine: machine(),
        duration_seconds: load.duration.as_secs(),
        connections: load.connections,
        ingest_closed_loop: ingest_closed.latency,
        ingest_open_loop_rate: ingest_open.rate,
        ingest_open_loop: ingest_open.latency,
        ingest_rejected_signatures: ingest_open.rejected_signatures,
        backlog_events: load.backlog,
        backlog_drain_seconds: backlog.drain_seconds,
        worker_events_per_second: backlog.worker_events_per_second,
        e2e_rate: load.rate,
        e2e_lag,
        room_creation: room_api_figures.room_creation,
        meeting_creation: room_api_figures.meeting_creation,
        meeting_reads: room_api_figures.meeting_reads,
        meeting_reuse: room_api_figures.meeting_reuse,
        idle_rss_mib,
        usage,
        broker_cpu_ms_per_event: ingest_closed.broker_cpu_ms_per_event,
        cluster,
        pipeline,
        ingest_samples: ingest_closed.samples,
    };
    report::write(&report, &options.out)?;
    Ok(())
}

/// Starts the single-node stack with room-api; returns it, with its idle memory,
/// once the worker is stopped.
async fn start_stack() -> anyhow::Result<(Stack, Vec<Usage>)> {
    let mut stack = Stack::start(false).await?;
    stack.start_room_api().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_mib = usage_of(&stack);
    // The worker is stopped while ingest is measured alone; its queue fills.
    if let Some(w) = stack.worker.as_mut() {
        w.terminate(Duration::from_secs(30));
    }
    Ok((stack, idle_rss_mib))
}

/// Phase 1's figures.
struct IngestClosedLoop {
    /// The run id of its events (phase 2's open loop sends under it too).
    run: String,
    latency: Latency,
    /// Latencies (ms), sampled, for the plot.
    samples: Vec<f64>,
    /// The single broker's CPU per accepted event.
    broker_cpu_ms_per_event: f64,
}

/// Phase 1: signed webhooks to webhook-ingest from `connections` senders, each
/// sending the next as soon as the last was answered.
async fn ingest_closed_loop(
    load: &Load,
    stack: &Stack,
    http: &reqwest::Client,
    url: &Arc<str>,
) -> IngestClosedLoop {
    let connections = load.connections;
    eprintln!("1/5 webhook-ingest, closed loop, {connections} connections");
    let broker_cpu_before = stack.engine_cpu_seconds().1;
    let run_a = format!("a{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    let (h, u, r) = (http.clone(), url.clone(), run_a.clone());
    let (lat, errors) = closed_loop(connections, load.warmup, load.duration, move |c, n| {
        let (h, u, r) = (h.clone(), u.clone(), r.clone());
        async move {
            let (_, body) = sender::joined(MEETING, &r, c * 10_000_000 + n as usize);
            matches!(sender::post(&h, &u, SECRET, &body).await, Ok(200))
        }
    })
    .await;
    let samples: Vec<f64> = lat
        .iter()
        .step_by((lat.len() / 2000).max(1))
        .map(|m| *m as f64 / 1000.0)
        .collect();
    let latency = summarize(lat, errors, load.duration.as_secs_f64());
    let broker_cpu_ms_per_event = per_event_ms(
        stack.engine_cpu_seconds().1 - broker_cpu_before,
        latency.count,
    );
    IngestClosedLoop {
        run: run_a,
        latency,
        samples,
        broker_cpu_ms_per_event,
    }
}

/// Phase 2's figures.
struct IngestOpenLoop {
    /// The fixed rate the open loop sent at.
    rate: f64,
    latency: Latency,
    rejected_signatures: Latency,
}

/// Phase 2: webhook-ingest at a fixed rate (half the closed loop's throughput, at
/// least 500/s), then forged signatures in a closed loop.
async fn ingest_open_loop(
    load: &Load,
    http: &reqwest::Client,
    url: &Arc<str>,
    ingest_closed: &IngestClosedLoop,
) -> IngestOpenLoop {
    let (connections, rate) = (load.connections, load.rate);
    eprintln!("2/5 webhook-ingest, open loop at {rate}/s, and rejected signatures");
    let open_rate = (ingest_closed.latency.per_second * 0.5).max(500.0).round();
    let latency = open_loop(http, url, &ingest_closed.run, open_rate, load.duration).await;
    let (h, u) = (http.clone(), url.clone());
    let (lat, errors) = closed_loop(connections, Duration::from_secs(1), Duration::from_secs(5), move |_, _| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            let body = br#"{"id":"forged","type":"room.client.joined","createdAt":"2030-01-01T00:00:00Z","data":{}}"#;
            matches!(sender::post(&h, &u, "not-the-secret", body).await, Ok(401))
        }
    })
    .await;
    IngestOpenLoop {
        rate: open_rate,
        latency,
        rejected_signatures: summarize(lat, errors, 5.0),
    }
}

/// Phase 3's figures.
struct BacklogDrain {
    drain_seconds: f64,
    /// Every event applied during the drain (earlier phases' too) per second.
    worker_events_per_second: f64,
}

/// Phase 3: `backlog` events queued while the worker is stopped, then drained by
/// it; returns once the queue is empty (the earlier phases' events applied too).
async fn backlog_drain(
    load: &Load,
    stack: &mut Stack,
    http: &reqwest::Client,
    url: &Arc<str>,
) -> anyhow::Result<BacklogDrain> {
    let backlog = load.backlog;
    eprintln!("3/5 backlog of {backlog} events drained by recording-worker");
    let run_b = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    fill(http, url, &run_b, backlog, load.connections).await;
    let db_url = stack.db_url.clone();
    let (backlog_drain_seconds, applied_during_drain) =
        drain(&db_url, &run_b, backlog, stack.start_worker()).await?;
    let drained_total = count(&stack.db_url, "").await?;
    // Wait until the queue is empty (phase 1 and 2 events applied too).
    let mut last = drained_total;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = count(&stack.db_url, "").await?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(BacklogDrain {
        drain_seconds: backlog_drain_seconds,
        worker_events_per_second: applied_during_drain as f64 / backlog_drain_seconds,
    })
}

/// Phase 4: events at `rate` with the worker running; returns the lags from each
/// 200 to its committed row (errors: the events not accepted).
async fn end_to_end(load: &Load, stack: &Stack, url: &Arc<str>) -> anyhow::Result<Latency> {
    let (duration, rate) = (load.duration, load.rate);
    eprintln!("4/5 end to end at {rate}/s: the 200 to the row in Postgres");
    let run_c = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    let n = (rate * duration.as_secs_f64()) as usize;
    let events: Vec<_> = (0..n).map(|i| sender::joined(MEETING, &run_c, i)).collect();
    let sent = sender::paced(url, SECRET, events, rate, 0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lags = e2e_lags(&stack.db_url, &run_c, &sent).await?;
    Ok(summarize(
        lags,
        sent.iter().filter(|s| !s.accepted).count(),
        duration.as_secs_f64(),
    ))
}

/// Phase 5's figures.
#[derive(Debug, Serialize)]
pub struct RoomApiFigures {
    pub room_creation: Latency,
    pub meeting_creation: Latency,
    pub meeting_reads: Latency,
    pub meeting_reuse: Latency,
}

/// Phase 5: room-api against the Whereby stand-in: rooms created, a new meeting
/// for each (a Whereby call each), one meeting read over and over, and the
/// create-meeting reuse path.
async fn room_api(
    load: &Load,
    stack: &Stack,
    http: &reqwest::Client,
) -> anyhow::Result<RoomApiFigures> {
    let (connections, duration) = (load.connections, load.duration);
    eprintln!("5/5 room-api against the Whereby stand-in");
    let token: Arc<str> = crate::token(stack::JWT_SECRET, "bench-user")?.into();
    let api: Arc<str> = stack.room_api_url.clone().into();
    let run_d = uuid::Uuid::new_v4().simple().to_string()[..5].to_owned();
    let (h, a, t, r) = (http.clone(), api.clone(), token.clone(), run_d.clone());
    let (lat, errors) = closed_loop(
        connections,
        Duration::from_secs(1),
        duration,
        move |c, n| {
            let (h, a, t, r) = (h.clone(), a.clone(), t.clone(), r.clone());
            async move {
                h.post(format!("{a}/v1/rooms"))
                    .bearer_auth(&*t)
                    .json(&json!({"name": format!("b{r}-{c}-{n}")}))
                    .send()
                    .await
                    .is_ok_and(|res| res.status().as_u16() == 201)
            }
        },
    )
    .await;
    let room_creation = summarize(lat, errors, duration.as_secs_f64());
    // One new meeting per room (each a Whereby call), on rooms made above.
    let (h, a, t, r) = (http.clone(), api.clone(), token.clone(), run_d.clone());
    let (lat, errors) = closed_loop(connections, Duration::ZERO, duration, move |c, n| {
        let (h, a, t, r) = (h.clone(), a.clone(), t.clone(), r.clone());
        async move {
            h.post(format!("{a}/v1/rooms/b{r}-{c}-{n}/meeting"))
                .bearer_auth(&*t)
                .send()
                .await
                .is_ok_and(|res| res.status().as_u16() == 201)
        }
    })
    .await;
    let meeting_creation = summarize(lat, errors, duration.as_secs_f64());
    let meeting: serde_json::Value = http
        .post(format!("{api}/v1/rooms/b{run_d}-0-0/meeting"))
        .bearer_auth(&*token)
        .send()
        .await?
        .json()
        .await?;
    let id: Arc<str> = meeting["id"].as_str().unwrap_or_default().into();
    let (h, a, t, i) = (http.clone(), api.clone(), token.clone(), id.clone());
    let (lat, errors) = closed_loop(
        connections,
        Duration::from_secs(1),
        duration,
        move |_, _| {
            let (h, a, t, i) = (h.clone(), a.clone(), t.clone(), i.clone());
            async move {
                h.get(format!("{a}/v1/meetings/{i}"))
                    .bearer_auth(&*t)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        },
    )
    .await;
    let meeting_reads = summarize(lat, errors, duration.as_secs_f64());
    let (h, a, t, r) = (http.clone(), api.clone(), token.clone(), run_d.clone());
    let (lat, errors) = closed_loop(
        connections,
        Duration::from_secs(1),
        duration,
        move |c, _| {
            let (h, a, t, r) = (h.clone(), a.clone(), t.clone(), r.clone());
            // The reuse path: the room's meeting exists, so create-meeting answers 200.
            async move {
                h.post(format!("{a}/v1/rooms/b{r}-{}-0/meeting", c % 8))
                    .bearer_auth(&*t)
                    .send()
                    .await
                    .is_ok_and(|res| res.status().is_success())
            }
        },
    )
    .await;
    let meeting_reuse = summarize(lat, errors, duration.as_secs_f64());
    Ok(RoomApiFigures {
        room_creation,
        meeting_creation,
        meeting_reads,
        meeting_reuse,
    })
}

fn per_event_ms(cpu_seconds: f64, events: usize) -> f64 {
    if events == 0 {
        0.0
    } else {
        cpu_seconds * 1000.0 / events as f64
    }
}

/// `--cluster`: ingest through two replicas onto three broker nodes, then a backlog
/// drained by two workers (each on its own port, the same binaries).
async fn cluster_figures(
    connections: usize,
    warmup: Duration,
    duration: Duration,
    backlog: usize,
) -> anyhow::Result<ClusterFigures> {
    use crate::cluster::{ClusterStack, Kind};
    eprintln!("cluster: starting three RabbitMQ nodes, a PostgreSQL pair, two of each service");
    let mut stack = ClusterStack::start().await?;
    stack.kill(Kind::Worker, 0);
    stack.kill(Kind::Worker, 1);
    let urls: Arc<Vec<String>> = Arc::new(stack.ingest_urls());
    let http = sender::client(connections * 2);
    let cpu = |stack: &ClusterStack| -> (f64, f64) {
        let broker = stack.rabbit.nodes.iter().map(|n| n.cpu_seconds()).sum();
        let ingest = stack
            .ingest
            .iter()
            .filter_map(|r| r.proc.as_ref().map(|p| p.usage().1))
            .sum();
        (broker, ingest)
    };
    eprintln!("cluster 1/2 webhook-ingest x2, closed loop, {connections} connections");
    let (broker_before, ingest_before) = cpu(&stack);
    let run = format!("ca{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    let (h, u, r) = (http.clone(), urls.clone(), run.clone());
    let (lat, errors) = closed_loop(connections, warmup, duration, move |c, n| {
        let (h, u, r) = (h.clone(), u.clone(), r.clone());
        async move {
            let (_, body) = sender::joined(MEETING, &r, c * 10_000_000 + n as usize);
            let url = &u[c % u.len()];
            matches!(sender::post(&h, url, SECRET, &body).await, Ok(200))
        }
    })
    .await;
    let (broker_after, ingest_after) = cpu(&stack);
    let ingest_closed_loop = summarize(lat, errors, duration.as_secs_f64());
    // CPU includes the warm-up's events, as for the single broker: the ratio holds.
    let accepted_total = ingest_closed_loop.count;

    eprintln!("cluster 2/2 backlog of {backlog} events drained by two workers");
    let url: Arc<str> = urls[0].clone().into();
    let run_b = format!("cb{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    fill(&http, &url, &run_b, backlog, connections).await;
    let db_url = stack.db_url();
    let (backlog_drain_seconds, applied_during_drain) = drain(&db_url, &run_b, backlog, async {
        stack.start_replica(Kind::Worker, 0).await?;
        stack.start_replica(Kind::Worker, 1).await
    })
    .await?;
    Ok(ClusterFigures {
        broker_cpu_ms_per_event: per_event_ms(broker_after - broker_before, accepted_total),
        ingest_cpu_ms_per_event: per_event_ms(ingest_after - ingest_before, accepted_total),
        ingest_closed_loop,
        backlog_events: backlog,
        backlog_drain_seconds,
        worker_events_per_second: applied_during_drain as f64 / backlog_drain_seconds,
    })
}

/// Inbox rows whose event id starts with `prefix` (all with "").
pub(crate) async fn count(db_url: &str, prefix: &str) -> anyhow::Result<usize> {
    let n = stack::scalar_in(
        db_url,
        &format!("SELECT count(*) AS n FROM webhook_events WHERE event_id LIKE '{prefix}%'"),
    )
    .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Starts the workers, then waits (at most 30 minutes) until the `backlog` events
/// of `run` are applied. Returns the seconds it took and every event applied
/// meanwhile: events queued by earlier phases are drained first and count too.
async fn drain(
    db_url: &str,
    run: &str,
    backlog: usize,
    start_workers: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<(f64, usize)> {
    let before = count(db_url, "").await?;
    let started = Instant::now();
    start_workers.await?;
    while count(db_url, &format!("{run}-")).await? < backlog {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the backlog was not drained in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((seconds, count(db_url, "").await?.saturating_sub(before)))
}

/// Queues exactly `n` events of `run` (retrying until each got its 200).
async fn fill(http: &reqwest::Client, url: &Arc<str>, run: &str, n: usize, connections: usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (h, u, r, next) = (http.clone(), url.clone(), run.to_owned(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let (_, body) = sender::joined(MEETING, &r, i);
                    while !matches!(sender::post(&h, &u, SECRET, &body).await, Ok(200)) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// Open loop: requests at a fixed rate whatever the answers; latency counts from
/// the scheduled send time, so queueing shows.
async fn open_loop(
    http: &reqwest::Client,
    url: &Arc<str>,
    run: &str,
    rate: f64,
    duration: Duration,
) -> Latency {
    let n = (rate * duration.as_secs_f64()) as usize;
    let events = (0..n)
        .map(|i| sender::joined(MEETING, &format!("{run}o"), i))
        .collect();
    let answers = sender::paced_from_schedule(http, url, &SECRET.into(), events, rate).await;
    let errors = answers.iter().filter(|(_, s)| !s.accepted).count();
    let lat = answers
        .into_iter()
        .filter(|(_, s)| s.accepted)
        .map(|(l, _)| l)
        .collect();
    summarize(lat, errors, duration.as_secs_f64())
}

/// For each accepted event: its row's commit time minus the moment its 200 arrived.
pub async fn e2e_lags(db_url: &str, run: &str, sent: &[sender::Sent]) -> anyhow::Result<Vec<u64>> {
    use diesel::QueryableByName;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_id: String,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        recorded_at: chrono::DateTime<chrono::Utc>,
    }
    let mut conn = AsyncPgConnection::establish(db_url).await?;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT event_id, recorded_at FROM webhook_events WHERE event_id LIKE $1",
    )
    .bind::<diesel::sql_types::Text, _>(format!("{run}-%"))
    .load(&mut conn)
    .await?;
    let committed: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> = rows
        .into_iter()
        .map(|r| (r.event_id, r.recorded_at))
        .collect();
    Ok(sent
        .iter()
        .filter_map(|s| {
            let (at, done) = (s.accepted_at?, committed.get(&s.id)?);
            Some((*done - at).num_microseconds().unwrap_or(0).max(0) as u64)
        })
        .collect())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(0.0, |k| k as f64 / 1024.0 / 1024.0);
    format!(
        "{cores} cores, {mem:.0} GiB; services, PostgreSQL, RabbitMQ and the load generator share them"
    )
}
