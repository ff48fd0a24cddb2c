//! The load benchmark's report: `report.json` (every figure), `report.md` (the
//! tables) and `ingest-latency.svg` (the closed-loop ingest latency curve), also
//! printed.

use crate::{
    bench::{Latency, Report, RoomApiFigures},
    pipeline::{CpuPerEvent, PipelineFigures},
};

fn row(name: &str, l: &Latency) -> String {
    format!(
        "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
        l.per_second, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.errors
    )
}

fn markdown(r: &Report) -> String {
    let mut md = format!(
        "## Benchmark ({})\n\nEach phase: {} s after a warm-up, {} connections for closed loops.\n\n\
         | phase | per second | p50 ms | p90 ms | p99 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|---:|\n",
        r.machine, r.duration_seconds, r.connections
    );
    md.push_str(&row(
        "webhook-ingest, signed, closed loop (200 = confirmed by RabbitMQ)",
        &r.ingest_closed_loop,
    ));
    md.push_str(&row(
        &format!(
            "webhook-ingest, open loop at {:.0}/s (latency from the scheduled send)",
            r.ingest_open_loop_rate
        ),
        &r.ingest_open_loop,
    ));
    md.push_str(&row(
        "webhook-ingest, wrong signature (401)",
        &r.ingest_rejected_signatures,
    ));
    md.push_str(&row(
        &format!(
            "end to end at {:.0}/s: lag from the 200 to the committed row",
            r.e2e_rate
        ),
        &r.e2e_lag,
    ));
    md.push_str(&row("room-api, create room", &r.room_creation));
    md.push_str(&row(
        "room-api, create meeting (Whereby stand-in)",
        &r.meeting_creation,
    ));
    md.push_str(&row("room-api, read a meeting", &r.meeting_reads));
    md.push_str(&row(
        "room-api, create-meeting reuse path (200)",
        &r.meeting_reuse,
    ));
    md.push_str(&format!(
        "\nBacklog: {} queued events drained in {:.1} s; recording-worker applied {:.0} events/s (sustained; batches of what has arrived, one transaction each).\n\n\
         | service | idle RSS MiB | peak RSS MiB | CPU s (whole run) |\n|---|---:|---:|---:|\n",
        r.backlog_events, r.backlog_drain_seconds, r.worker_events_per_second
    ));
    for u in &r.usage {
        let idle = r
            .idle_rss_mib
            .iter()
            .find(|i| i.service == u.service)
            .map_or(0.0, |i| i.peak_rss_mib);
        md.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} |\n",
            u.service, idle, u.peak_rss_mib, u.cpu_seconds
        ));
    }
    if let Some(c) = &r.cluster {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        md.push_str(&format!(
            "\n### Single node against the cluster (same run)\n\n| | one RabbitMQ node, one ingest, one worker | three nodes (quorum on 3), two ingest, two workers | cluster / single |\n|---|---:|---:|---:|\n| ingest closed loop, accepted/s | {:.0} | {:.0} | {:.2} |\n| ingest closed loop, p99 ms | {:.2} | {:.2} | {:.2} |\n| broker CPU ms per accepted event | {:.3} | {:.3} | {:.2} |\n| backlog drain, applied/s | {:.0} (of {}) | {:.0} (of {}) | {:.2} |\n\nCluster ingest CPU: {:.3} ms per accepted event over both replicas.\n",
            r.ingest_closed_loop.per_second,
            c.ingest_closed_loop.per_second,
            ratio(c.ingest_closed_loop.per_second, r.ingest_closed_loop.per_second),
            r.ingest_closed_loop.p99_ms,
            c.ingest_closed_loop.p99_ms,
            ratio(c.ingest_closed_loop.p99_ms, r.ingest_closed_loop.p99_ms),
            r.broker_cpu_ms_per_event,
            c.broker_cpu_ms_per_event,
            ratio(c.broker_cpu_ms_per_event, r.broker_cpu_ms_per_event),
            r.worker_events_per_second,
            r.backlog_events,
            c.worker_events_per_second,
            c.backlog_events,
            ratio(c.worker_events_per_second, r.worker_events_per_second),
            c.ingest_cpu_ms_per_event,
        ));
    }
    md.push_str(&pipeline_markdown(&r.pipeline, Some(&r.ingest_closed_loop)));
    md
}

fn cpu_row(name: &str, c: &CpuPerEvent) -> String {
    format!(
        "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
        c.ingest_ms, c.worker_ms, c.postgres_ms, c.rabbitmq_ms, c.total_ms
    )
}

/// The pipeline phases: ingest and worker together, per kind of engines; with
/// `ingest_alone` (phase 1 of the same run, private engines) the ratio to it.
fn pipeline_markdown(figures: &[PipelineFigures], ingest_alone: Option<&Latency>) -> String {
    let mut md = String::from(
        "\n### The pipeline: webhook-ingest and recording-worker together\n\n\
         Closed loop: answered per second and latency; applied per second from the first send \
         to the last committed row. Steady rates: ingest latency from each event's scheduled \
         send; lag from each 200 to its committed row.\n\n\
         | engines | phase | per second | p50 ms | p90 ms | p99 ms | max ms | errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for f in figures {
        let l = &f.closed_loop;
        md.push_str(&format!(
            "| {} | closed loop, answered | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n| {} | closed loop, applied end to end | {:.0} | | | | | |\n",
            f.engines, l.per_second, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.errors,
            f.engines, f.applied_per_second
        ));
        for s in &f.steady {
            for (what, l) in [("ingest from schedule", &s.ingest), ("200 to row", &s.lag)] {
                md.push_str(&format!(
                    "| {} | {:.0}/s, {what} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
                    f.engines,
                    s.rate,
                    l.per_second,
                    l.p50_ms,
                    l.p90_ms,
                    l.p99_ms,
                    l.max_ms,
                    l.errors
                ));
            }
        }
    }
    md.push_str(
        "\nCPU ms per event (each server with its child processes):\n\n\
         | engines, phase | webhook-ingest | recording-worker | PostgreSQL | RabbitMQ | total |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for f in figures {
        md.push_str(&cpu_row(
            &format!("{}, closed loop", f.engines),
            &f.closed_loop_cpu,
        ));
        for s in &f.steady {
            md.push_str(&cpu_row(&format!("{}, {:.0}/s", f.engines, s.rate), &s.cpu));
        }
    }
    if let Some(alone) = ingest_alone.filter(|a| a.per_second > 0.0) {
        md.push_str("\nAgainst ingest alone (phase 1, private engines, same run):\n\n");
        for f in figures {
            md.push_str(&format!(
                "- {}: answered {:.2}x, applied end to end {:.2}x; closed-loop p99 {:.2} ms (alone {:.2} ms)\n",
                f.engines,
                f.closed_loop.per_second / alone.per_second,
                f.applied_per_second / alone.per_second,
                f.closed_loop.p99_ms,
                alone.p99_ms
            ));
        }
    }
    md
}

/// `--only room-api`: room-api's phase.
#[allow(clippy::print_stdout, reason = "the report is the program's output")]
pub fn write_room_api(f: &RoomApiFigures, out: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut md = String::from(
        "| phase | per second | p50 ms | p90 ms | p99 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    md.push_str(&row("room-api, create room", &f.room_creation));
    md.push_str(&row(
        "room-api, create meeting (Whereby stand-in)",
        &f.meeting_creation,
    ));
    md.push_str(&row("room-api, read a meeting", &f.meeting_reads));
    md.push_str(&row(
        "room-api, create-meeting reuse path (200)",
        &f.meeting_reuse,
    ));
    std::fs::write(
        format!("{out}/room-api.json"),
        serde_json::to_string_pretty(f)?,
    )?;
    std::fs::write(format!("{out}/room-api.md"), &md)?;
    println!("{md}\nwritten to {out}/room-api.json, room-api.md");
    Ok(())
}

/// `--only pipeline`: the pipeline phases' report.
#[allow(clippy::print_stdout, reason = "the report is the program's output")]
pub fn write_pipeline(figures: &[PipelineFigures], out: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let md = pipeline_markdown(figures, None);
    std::fs::write(
        format!("{out}/pipeline.json"),
        serde_json::to_string_pretty(figures)?,
    )?;
    std::fs::write(format!("{out}/pipeline.md"), &md)?;
    println!("{md}\nwritten to {out}/pipeline.json, pipeline.md");
    Ok(())
}

/// A latency distribution (percentile curve) of the closed-loop ingest phase.
fn svg(r: &Report) -> String {
    let mut v = r.ingest_samples.clone();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let (w, h, pad) = (640.0, 360.0, 50.0);
    let max = v.last().copied().unwrap_or(1.0).max(0.001);
    let points: Vec<String> = v
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let x = pad + (w - 2.0 * pad) * (i as f64 / (v.len().max(2) - 1) as f64);
            let y = h - pad - (h - 2.0 * pad) * (ms / max);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{pad}" y="25">webhook-ingest latency by percentile ({} connections, {:.0} req/s)</text>
<line x1="{pad}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{y0}" stroke="black"/>
<text x="{pad}" y="{yl}">p0</text><text x="{xm}" y="{yl}">p50</text><text x="{x9}" y="{yl}">p90</text><text x="{x1}" y="{yl}">p100</text>
<text x="5" y="{pad}">{max:.1} ms</text><text x="5" y="{y0}">0 ms</text>
<polyline fill="none" stroke="steelblue" stroke-width="2" points="{pts}"/>
</svg>
"##,
        r.connections,
        r.ingest_closed_loop.per_second,
        y0 = h - pad,
        x1 = w - pad,
        yl = h - pad + 18.0,
        xm = pad + (w - 2.0 * pad) * 0.5,
        x9 = pad + (w - 2.0 * pad) * 0.9,
        pts = points.join(" ")
    )
}

#[allow(clippy::print_stdout, reason = "the report is the program's output")]
pub fn write(r: &Report, out: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let md = markdown(r);
    std::fs::write(
        format!("{out}/report.json"),
        serde_json::to_string_pretty(r)?,
    )?;
    std::fs::write(format!("{out}/report.md"), &md)?;
    std::fs::write(format!("{out}/ingest-latency.svg"), svg(r))?;
    println!("{md}\nwritten to {out}/report.json, report.md, ingest-latency.svg");
    Ok(())
}
