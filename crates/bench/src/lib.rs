//! Evidence for the throughput and the no-loss promise, with real processes.
//!
//! - `whereby-bench bench --out DIR`: the load benchmark (`make bench`); prints a
//!   report and writes it as JSON, Markdown and an SVG latency plot.
//! - `whereby-bench chaos [--scenario NAME[,NAME…]]`: the fault suite (`make chaos`, also run
//!   by `.ci/run`); prints the table and fails if any scenario lost an accepted event.
//!
//! Both start the services from the built binaries (`WHEREBY_BIN_DIR`, default next
//! to this program).

pub mod bench;
pub mod chaos;
pub mod cluster;
pub mod cpu;
pub mod pipeline;
pub mod procs;
pub mod proxy;
pub mod report;
pub mod sender;
pub mod stack;

/// An HS256 bearer token for room-api (the stack's `AUTH_JWT_SECRET`).
pub fn token(secret: &str, sub: &str) -> anyhow::Result<String> {
    let exp = chrono::Utc::now().timestamp() + 3600;
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())?,
    )?)
}

/// Evidence for the throughput and the no-loss promise: starts the services
/// from the built binaries (WHEREBY_BIN_DIR, default next to this program) against
/// PostgreSQL, RabbitMQ and the S3/SQS emulator, and measures or breaks them.
#[derive(clap::Parser)]
#[command(
    name = "whereby-bench",
    version,
    verbatim_doc_comment,
    after_help = "Needs PostgreSQL (127.0.0.1:5432), RabbitMQ (127.0.0.1:5672; chaos starts
private nodes of both) and the S3/SQS emulator (AWS_ENDPOINT_URL, default
http://127.0.0.1:5000): `make bench` and `make chaos` start what is not running.
Settings: WHEREBY_BIN_DIR (the built services, default next to this program).
Results: docs/benchmarks.md and docs/reliability.md."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// The load benchmark: a report printed and written as JSON, Markdown and SVG.
    Bench(bench::Options),
    /// The fault suite on cluster engines (three RabbitMQ nodes, a PostgreSQL primary
    /// and standby, two replicas of each service): lost 0, duplicates 0, and the
    /// longest window of non-200 answers per scenario.
    ClusterChaos {
        /// Only these scenarios (comma-separated names).
        #[arg(long)]
        scenario: Option<String>,
        /// Where to write cluster-chaos.json and cluster-chaos.md.
        #[arg(long)]
        out: Option<String>,
    },
    /// The fault suite: each scenario under load; fails if an accepted event was lost.
    Chaos {
        /// Only these scenarios (comma-separated names).
        #[arg(long)]
        scenario: Option<String>,
        /// Where to write chaos.json and chaos.md.
        #[arg(long)]
        out: Option<String>,
    },
}

/// Prints a fault suite's table and verdict, writes `<name>.json` and `<name>.md`
/// to `out` when given; the exit code is 1 if a scenario failed or the suite did
/// not run.
#[allow(clippy::print_stdout, reason = "the report is the program's output")]
fn report_suite<R: serde::Serialize>(
    name: &str,
    rows: anyhow::Result<Vec<R>>,
    out: Option<&str>,
    table: fn(&[R]) -> String,
    passed: fn(&R) -> bool,
) -> i32 {
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return 1;
        }
    };
    if rows.is_empty() {
        eprintln!("{name}: no scenario ran");
        return 1;
    }
    println!("{}", table(&rows));
    if let Some(out) = out {
        let _ = std::fs::create_dir_all(out);
        let _ = std::fs::write(
            format!("{out}/{name}.json"),
            serde_json::to_string_pretty(&rows).unwrap_or_default(),
        );
        let _ = std::fs::write(format!("{out}/{name}.md"), table(&rows));
    }
    let failed = rows.iter().filter(|r| !passed(r)).count();
    println!("{name}: {} passed, {failed} failed", rows.len() - failed);
    i32::from(failed > 0)
}

/// Runs a parsed command line; returns the exit code.
#[allow(clippy::print_stdout, reason = "the report is the program's output")]
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Chaos { scenario, out } => report_suite(
            "chaos",
            chaos::run(scenario.as_deref()).await,
            out.as_deref(),
            chaos::table,
            |r| r.passed,
        ),
        Command::ClusterChaos { scenario, out } => report_suite(
            "cluster-chaos",
            cluster::run(scenario.as_deref()).await,
            out.as_deref(),
            cluster::table,
            |r| r.passed,
        ),
        Command::Bench(options) => match bench::run(options).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("bench: {e:#}");
                1
            }
        },
    }
}
