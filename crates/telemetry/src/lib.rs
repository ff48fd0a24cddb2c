//! Logging and metrics set-up shared by every binary, and the supervisor of
//! background loops.

mod json;
mod shutdown;
mod supervisor;
pub mod trace;

pub use shutdown::shutdown_on_signals;
pub use supervisor::Supervisor;

use std::{io::IsTerminal, sync::OnceLock};

use prometheus::{IntGaugeVec, Opts, Registry, proto::MetricFamily};
use tracing_subscriber::{EnvFilter, filter::LevelFilter, fmt, prelude::*};

pub use prometheus;

/// Flushes the traces still buffered when dropped (at the end of `main`; bounded
/// by the OTLP timeout, 10 s by default). A no-op when tracing is off.
#[must_use = "dropping it stops the trace exporter"]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "traces not flushed at shutdown");
        }
    }
}

/// Installs the global tracing subscriber: readable lines locally, one JSON object
/// per line when `json` (production, each carrying the service, its version and,
/// in a traced request or event, `trace_id` and `span_id`), and OpenTelemetry
/// traces when configured ([`trace`]). `filter` is an env-filter directive. A
/// second call (tests) keeps the first subscriber.
pub fn init(service: &'static str, json: bool, filter: &str) -> Telemetry {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = if trace::configured() {
        match trace::provider(service) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("{service}: traces are off: the OTLP exporter cannot be built: {e}");
                None
            }
        }
    } else {
        None
    };
    // Each output its own filter: LOG_LEVEL=warn must not switch traces off. Traces
    // take our info spans (requests, events, notifications) whatever the log level.
    let otel = provider
        .as_ref()
        .map(|p| trace::layer(p).with_filter(LevelFilter::INFO));
    let registry = tracing_subscriber::registry().with(otel);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .event_format(json::ServiceJson::new(service, provider.is_some()))
                    .fmt_fields(fmt::format::JsonFields::new())
                    .with_filter(filter),
            )
            .try_init()
    } else {
        // Colours only on a terminal: log files stay plain text.
        let ansi = std::io::stdout().is_terminal();
        registry
            .with(
                fmt::layer()
                    .with_target(false)
                    .with_ansi(ansi)
                    .with_filter(filter),
            )
            .try_init()
    };
    // Already installed: fine in tests, where many apps share a process.
    match result {
        Ok(()) => Telemetry { provider },
        Err(_) => Telemetry { provider: None },
    }
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
