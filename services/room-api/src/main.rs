//! room-api binary. `room-api` serves; `room-api migrate` applies migrations and
//! exits; `room-api dev-token <sub>` prints an HS256 token for local use.

use anyhow::Context;
use room_api::{Application, RoomApiSettings};

#[tokio::main]
#[allow(
    clippy::print_stdout,
    reason = "dev-token prints the token as its output"
)]
async fn main() -> anyhow::Result<()> {
    let settings = RoomApiSettings::load()?;
    telemetry::init(
        settings.log.log_format == settings::LogFormat::Json,
        &settings.log.log_level,
    );
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None | Some("serve") => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Some("migrate") => {
            db::migrate::run_pending(settings::ExposeSecret::expose_secret(
                &settings.database.database_url,
            ))
            .await?;
        }
        Some("dev-token") => {
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
