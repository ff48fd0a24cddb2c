//! The whole pipeline as production runs it: webhook-ingest and recording-worker
//! running together, on PostgreSQL and RabbitMQ run either privately or as the
//! machine's own servers. A closed loop (answered per second, latency, applied end
//! to end per second), then steady rates (latency from the scheduled send, and the
//! lag from each 200 to its committed row), each with the CPU time per event of
//! every process involved.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    bench::{Latency, closed_loop, count, e2e_lags, summarize},
    sender,
    stack::{Engines, MEETING, SECRET, Stack},
};

/// CPU milliseconds per event, by process (the servers with their children).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuPerEvent {
    pub ingest_ms: f64,
    pub worker_ms: f64,
    pub postgres_ms: f64,
    pub rabbitmq_ms: f64,
    pub total_ms: f64,
}

/// CPU seconds so far: ingest, worker, PostgreSQL, RabbitMQ.
#[derive(Debug, Clone, Copy)]
struct CpuSnapshot([f64; 4]);

impl CpuSnapshot {
    fn take(stack: &Stack) -> Self {
        let of = |p: &Option<crate::procs::Proc>| p.as_ref().map_or(0.0, |p| p.usage().1);
        let (postgres, rabbitmq) = stack.engine_cpu_seconds();
        Self([of(&stack.ingest), of(&stack.worker), postgres, rabbitmq])
    }

    fn per_event_since(self, before: Self, events: usize) -> CpuPerEvent {
        let ms = |i: usize| {
            if events == 0 {
                0.0
            } else {
                (self.0[i] - before.0[i]).max(0.0) * 1000.0 / events as f64
            }
        };
        CpuPerEvent {
            ingest_ms: ms(0),
            worker_ms: ms(1),
            postgres_ms: ms(2),
            rabbitmq_ms: ms(3),
            total_ms: ms(0) + ms(1) + ms(2) + ms(3),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SteadyFigures {
    pub rate: f64,
    /// webhook-ingest's answers, timed from each event's scheduled send.
    pub ingest: Latency,
    /// From each 200 to the event's committed row.
    pub lag: Latency,
    pub cpu: CpuPerEvent,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineFigures {
    pub engines: String,
    /// Ingest answered with the worker consuming throughout.
    pub closed_loop: Latency,
    /// Events applied per second, from the first send to the last committed row.
    pub applied_per_second: f64,
    pub closed_loop_cpu: CpuPerEvent,
    pub steady: Vec<SteadyFigures>,
}

/// What the pipeline phases take from the bench options.
pub struct PipelineLoad {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub rates: Vec<f64>,
}

/// Runs the pipeline phases on a fresh stack on `engines`.
pub async fn measure(engines: Engines, load: &PipelineLoad) -> anyhow::Result<PipelineFigures> {
    let mut stack = Stack::start_on(engines, false).await?;
    stack.wait_ready().await?;
    let result = phases(&stack, engines, load).await;
    stack.release_machine_engines().await?;
    result
}

async fn phases(
    stack: &Stack,
    engines: Engines,
    load: &PipelineLoad,
) -> anyhow::Result<PipelineFigures> {
    let url: Arc<str> = format!("{}/v1/whereby", stack.ingest_url).into();
    let http = sender::client(load.connections * 2);
    eprintln!(
        "pipeline on {}: closed loop, {} connections, worker consuming",
        engines.label(),
        load.connections
    );
    let run = format!("q{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    let before = CpuSnapshot::take(stack);
    let started = chrono::Utc::now();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (h, u, r, a) = (http.clone(), url.clone(), run.clone(), accepted.clone());
    let (lat, errors) = closed_loop(load.connections, load.warmup, load.duration, move |c, n| {
        let (h, u, r, a) = (h.clone(), u.clone(), r.clone(), a.clone());
        async move {
            let (_, body) = sender::joined(MEETING, &r, c * 10_000_000 + n as usize);
            let ok = matches!(sender::post(&h, &u, SECRET, &body).await, Ok(200));
            if ok {
                a.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            ok
        }
    })
    .await;
    let accepted = accepted.load(std::sync::atomic::Ordering::Relaxed);
    let last_row = applied(&stack.db_url, &run, accepted).await?;
    let closed_loop_cpu = CpuSnapshot::take(stack).per_event_since(before, accepted);
    let seconds = (last_row - started).num_milliseconds().max(1) as f64 / 1000.0;
    let closed_loop = summarize(lat, errors, load.duration.as_secs_f64());

    let mut steady = Vec::new();
    for &rate in &load.rates {
        eprintln!("pipeline on {}: steady {rate}/s", engines.label());
        steady.push(steady_rate(stack, &url, rate, load.duration).await?);
    }
    Ok(PipelineFigures {
        engines: engines.label().to_owned(),
        closed_loop,
        applied_per_second: accepted as f64 / seconds,
        closed_loop_cpu,
        steady,
    })
}

/// Waits (at most two minutes) until `accepted` events of `run` have rows; returns
/// the newest row's time.
async fn applied(
    db_url: &str,
    run: &str,
    accepted: usize,
) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let started = Instant::now();
    while count(db_url, &format!("{run}-")).await? < accepted {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the events of {run} were not applied within two minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let newest = crate::stack::scalar_in(
        db_url,
        &format!(
            "SELECT (extract(epoch FROM max(recorded_at)) * 1000000)::bigint AS n \
             FROM webhook_events WHERE event_id LIKE '{run}-%'"
        ),
    )
    .await?;
    Ok(chrono::DateTime::from_timestamp_micros(newest).unwrap_or_else(chrono::Utc::now))
}

/// Events at a fixed `rate` for `duration`, each sent at its scheduled moment
/// whatever happened to the ones before (as Whereby sends them).
async fn steady_rate(
    stack: &Stack,
    url: &Arc<str>,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<SteadyFigures> {
    let run = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    let n = (rate * duration.as_secs_f64()) as usize;
    let http = sender::client(512);
    let events = (0..n).map(|i| sender::joined(MEETING, &run, i)).collect();
    let before = CpuSnapshot::take(stack);
    let answers = sender::paced_from_schedule(&http, url, &SECRET.into(), events, rate).await;
    let (mut latencies, mut sent) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (from_schedule, s) in answers {
        if s.accepted {
            latencies.push(from_schedule);
        }
        sent.push(s);
    }
    let accepted = latencies.len();
    let errors = n - accepted;
    applied(&stack.db_url, &run, accepted).await?;
    let cpu = CpuSnapshot::take(stack).per_event_since(before, accepted);
    let lags = e2e_lags(&stack.db_url, &run, &sent).await?;
    Ok(SteadyFigures {
        rate,
        ingest: summarize(latencies, errors, duration.as_secs_f64()),
        lag: summarize(lags, errors, duration.as_secs_f64()),
        cpu,
    })
}
