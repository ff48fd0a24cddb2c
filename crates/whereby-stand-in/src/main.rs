//! `whereby-stand-in`: runs the local Whereby API stand-in.
//! Settings: `WHEREBY_STAND_IN_ADDR` (default 127.0.0.1:8090), `WHEREBY_API_KEY`
//! (the bearer token it accepts), `WHEREBY_STAND_IN_SUBDOMAIN`.

use std::net::TcpListener;

use whereby_stand_in::{StandInConfig, StandInServer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let addr = std::env::var("WHEREBY_STAND_IN_ADDR").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let defaults = StandInConfig::default();
    let config = StandInConfig {
        api_key: std::env::var("WHEREBY_API_KEY").unwrap_or(defaults.api_key),
        subdomain: std::env::var("WHEREBY_STAND_IN_SUBDOMAIN").unwrap_or(defaults.subdomain),
    };
    let server = StandInServer::start(TcpListener::bind(&addr)?, config)?;
    tracing::info!(api_url = %server.api_url, "Whereby stand-in listening");
    tokio::signal::ctrl_c().await?;
    server.stop().await;
    Ok(())
}
