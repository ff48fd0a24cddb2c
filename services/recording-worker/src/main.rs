//! recording-worker binary: parse arguments, load settings, init telemetry, build,
//! run until SIGTERM.

use clap::{CommandFactory, FromArgMatches, Parser};
use recording_worker::{Application, WorkerSettings};

/// Applies Whereby's webhook events to Postgres exactly once, records the cloud
/// recordings S3 announces on SQS and hands them to the transcription pipeline,
/// and runs the housekeeping jobs. Health, readiness and metrics on WORKER_ADDR.
#[derive(Parser)]
#[command(name = "recording-worker", version, verbatim_doc_comment)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::command().after_help(settings::help_text(&WorkerSettings::keys()));
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    let settings = settings::or_exit("recording-worker", WorkerSettings::load());
    let _telemetry = telemetry::init(
        "recording-worker",
        settings.log.log_format == settings::LogFormat::Json,
        &settings.log.log_level,
    );
    let shutdown = telemetry::shutdown_on_signals();
    Application::build(settings).await?.run(shutdown).await
}
