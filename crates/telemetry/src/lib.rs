//! Logging and metrics set-up shared by every binary, and the supervisor of
//! background loops.

mod shutdown;
mod supervisor;

pub use shutdown::shutdown_on_signals;
pub use supervisor::Supervisor;

use std::{io::IsTerminal, sync::OnceLock};

use prometheus::{IntGaugeVec, Opts, Registry, proto::MetricFamily};
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

/// The version every service reports (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from: `GIT_SHA` at build time (the Dockerfile
/// and `make release` pass it), `unknown` otherwise. Read from the environment
/// rather than from git so that a commit does not rebuild every crate.
pub const GIT_SHA: &str = match option_env!("GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

/// A service's registry: its metrics named `<prefix>_…`, starting with
/// `<prefix>_build_info{version,git_sha} 1`.
pub fn service_registry(prefix: &str) -> Result<Registry, prometheus::Error> {
    let registry = Registry::new_custom(Some(prefix.to_owned()), None)?;
    let info = IntGaugeVec::new(
        Opts::new(
            "build_info",
            "Always 1; the labels say which build is running",
        ),
        &["version", "git_sha"],
    )?;
    info.with_label_values(&[VERSION, GIT_SHA]).set(1);
    registry.register(Box::new(info))?;
    Ok(registry)
}

/// The process's own metrics under their standard names (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`, …), gathered at each scrape.
pub fn process_metrics() -> Vec<MetricFamily> {
    static PROCESS: OnceLock<Registry> = OnceLock::new();
    PROCESS
        .get_or_init(|| {
            let registry = Registry::new();
            let collector = prometheus::process_collector::ProcessCollector::for_self();
            if let Err(e) = registry.register(Box::new(collector)) {
                tracing::warn!(error = %e, "cannot register the process metrics");
            }
            registry
        })
        .gather()
}

/// What `/metrics` serves: the service's registry and the process metrics.
pub fn gather(registry: &Registry) -> Vec<MetricFamily> {
    let mut families = registry.gather();
    families.extend(process_metrics());
    families
}
