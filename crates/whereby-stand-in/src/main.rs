//! `whereby-stand-in`: runs the local Whereby API stand-in.

use std::net::TcpListener;

use clap::Parser;
use whereby_stand_in::{StandInConfig, StandInServer, webhooks::WebhookTarget};

/// A local stand-in for Whereby's REST API (api.whereby.dev/v1) that validates
/// requests against the official OpenAPI document. It also plays Whereby's
/// webhook sender (signed, with Whereby's retry rule) and cloud recorder (uploads
/// to S3), driven through /_stand-in/... routes. For tests and `make run` only.
#[derive(Parser)]
#[command(
    name = "whereby-stand-in",
    version,
    verbatim_doc_comment,
    after_help = "Settings (environment variables):
  WHEREBY_STAND_IN_ADDR         where it listens (default 127.0.0.1:8090)
  WHEREBY_API_KEY               the bearer token it accepts
  WHEREBY_STAND_IN_SUBDOMAIN    the subdomain of its room URLs
  WHEREBY_STAND_IN_WEBHOOK_URL  where it sends webhooks (none: it sends none)
  WHEREBY_WEBHOOK_SECRET        the signing secret (its first entry)
  AWS_ENDPOINT_URL              the S3 endpoint it uploads cloud recordings to
See docs/configuration.md."
)]
struct Cli {}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    Cli::parse();
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
