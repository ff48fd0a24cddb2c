//! webhook-ingest binary: parse arguments, load settings, init telemetry, build, run.

use clap::{CommandFactory, FromArgMatches, Parser};
use webhook_ingest::{Application, IngestSettings};

/// Whereby's webhook target: `POST /v1/whereby` verifies the signature and queues
/// the event on RabbitMQ, answering 200 only once the broker has confirmed it.
/// Health on `/v1/whereby/health`, readiness on `/readyz`, metrics on `/metrics`.
#[derive(Parser)]
#[command(name = "webhook-ingest", version, verbatim_doc_comment)]
struct Cli {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::command().after_help(settings::help_text(&IngestSettings::keys()));
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    let settings = settings::or_exit("webhook-ingest", IngestSettings::load());
    let _telemetry = telemetry::init(
        "webhook-ingest",
        settings.log.log_format == settings::LogFormat::Json,
        &settings.log.log_level,
    );
    let shutdown = telemetry::shutdown_on_signals();
    Application::build(settings).await?.run(shutdown).await
}
