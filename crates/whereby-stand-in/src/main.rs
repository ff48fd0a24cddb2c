//! `whereby-stand-in`: runs the local Whereby API stand-in.
//! Settings: `WHEREBY_STAND_IN_ADDR` (default 127.0.0.1:8090), `WHEREBY_API_KEY`
//! (the bearer token it accepts), `WHEREBY_STAND_IN_SUBDOMAIN`, and for webhooks
//! `WHEREBY_STAND_IN_WEBHOOK_URL` with `WHEREBY_WEBHOOK_SECRET` (its first entry),
//! and for cloud recordings the S3 endpoint `AWS_ENDPOINT_URL`.

use std::net::TcpListener;

use whereby_stand_in::{StandInConfig, StandInServer, webhooks::WebhookTarget};

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
        s3_endpoint: std::env::var("AWS_ENDPOINT_URL").ok(),
        webhooks: std::env::var("WHEREBY_STAND_IN_WEBHOOK_URL")
            .ok()
            .map(|url| WebhookTarget {
                url,
                secret: std::env::var("WHEREBY_WEBHOOK_SECRET")
                    .unwrap_or_default()
                    .split(',')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            }),
    };
    let server = StandInServer::start(TcpListener::bind(&addr)?, config)?;
    tracing::info!(api_url = %server.api_url, "Whereby stand-in listening");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.stop().await;
    Ok(())
}
