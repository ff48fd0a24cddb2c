//! room-api binary. `room-api` serves; `room-api migrate` applies migrations and
//! exits (it needs only the database settings); `room-api dev-token <sub>` prints
//! an HS256 token for local use.

use anyhow::Context;
use room_api::{Application, RoomApiSettings};
use settings::{DatabaseSettings, ExposeSecret, LogSettings, Source};

#[tokio::main]
#[allow(
    clippy::print_stdout,
    reason = "dev-token prints the token as its output"
)]
async fn main() -> anyhow::Result<()> {
    let source = Source::load()?;
    let log: LogSettings = source.section()?;
    telemetry::init(log.log_format == settings::LogFormat::Json, &log.log_level);
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None | Some("serve") => {
            let settings = RoomApiSettings::from_source(&source)?;
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Some("migrate") => {
            let database: DatabaseSettings = source.section()?;
            db::migrate::run_pending(database.database_url.expose_secret()).await?;
        }
        Some("dev-token") => {
            let settings = RoomApiSettings::from_source(&source)?;
            let sub = args
                .next()
                .context("usage: room-api dev-token <sub> [hours]")?;
            let hours: u64 = args.next().map_or(Ok(24), |h| h.parse())?;
            println!(
                "{}",
                room_api::auth::dev_token(&settings.auth, &sub, hours)
                    .map_err(anyhow::Error::msg)?
            );
        }
        Some(other) => {
            anyhow::bail!("unknown command {other:?}; expected serve, migrate or dev-token")
        }
    }
    Ok(())
}
