//! recording-worker binary: load settings, init telemetry, build, run until SIGTERM.

use recording_worker::{Application, WorkerSettings, startup::shutdown_on_signals};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = WorkerSettings::load()?;
    telemetry::init(
        settings.log.log_format == settings::LogFormat::Json,
        &settings.log.log_level,
    );
    let shutdown = shutdown_on_signals();
    Application::build(settings).await?.run(shutdown).await
}
