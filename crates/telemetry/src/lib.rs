//! Logging and metrics set-up shared by every binary, and the supervisor of
//! background loops.

mod shutdown;
mod supervisor;

pub use shutdown::shutdown_on_signals;
pub use supervisor::Supervisor;

use std::io::IsTerminal;

use prometheus::{Encoder, Registry, TextEncoder};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub use prometheus;

/// Installs the global tracing subscriber: readable lines locally, one JSON object
/// per line when `json` (production). `filter` is an env-filter directive. A second
/// call (tests) keeps the first subscriber.
pub fn init(json: bool, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
    } else {
        // Colours only on a terminal: log files stay plain text.
        let ansi = std::io::stdout().is_terminal();
        registry
            .with(fmt::layer().with_target(false).with_ansi(ansi))
            .try_init()
    };
    // Already installed: fine in tests, where many apps share a process.
    drop(result);
}

/// Renders a registry in the prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}
