//! webhook-ingest binary: load settings, init telemetry, build, run.

use webhook_ingest::{Application, IngestSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = IngestSettings::load()?;
    telemetry::init(
        settings.log.log_format == settings::LogFormat::Json,
        &settings.log.log_level,
    );
    Application::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}
