//! The HTTP server every service runs, wired once.

use std::{net::TcpListener, time::Duration};

use actix_web::{
    App, HttpServer,
    dev::Server,
    middleware::{Condition, from_fn},
    web,
};
use prometheus::Registry;

use crate::{HttpMetrics, RequestDeadline, request_context, request_deadline};

/// How a service's HTTP server runs.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Worker threads; `None` is actix's default (one per core).
    pub workers: Option<usize>,
    /// How long requests in flight may still take once shutdown has begun.
    pub shutdown_timeout: Duration,
    /// When set, a request that takes longer is answered 503 `timeout`.
    pub deadline: Option<Duration>,
}

/// Starts serving on `listener`: the shared middleware (request id, access log and
/// HTTP metrics; the deadline when one is set), the registry and the HTTP metrics
/// as app data, then the service's own routes and app data from `configure`.
/// actix's own signal handling is off: the process's one shutdown token decides
/// when to stop (`telemetry::shutdown_on_signals`), through the server's handle.
pub fn serve<F>(
    listener: TcpListener,
    options: ServerOptions,
    registry: Registry,
    http_metrics: HttpMetrics,
    configure: F,
) -> std::io::Result<Server>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let registry = web::Data::new(registry);
    let http_metrics = web::Data::new(http_metrics);
    let deadline = options.deadline.map(|d| web::Data::new(RequestDeadline(d)));
    let mut server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(registry.clone())
            .app_data(http_metrics.clone());
        if let Some(deadline) = &deadline {
            app = app.app_data(deadline.clone());
        }
        app.wrap(Condition::new(
            deadline.is_some(),
            from_fn(request_deadline),
        ))
        .wrap(from_fn(request_context))
        .configure(configure.clone())
    })
    .shutdown_timeout(options.shutdown_timeout.as_secs())
    .disable_signals()
    .listen(listener)?;
    if let Some(workers) = options.workers {
        server = server.workers(workers.max(1));
    }
    Ok(server.run())
}

/// Runs `server` until `shutdown` is cancelled, then stops it gracefully (requests
/// in flight get the server's shutdown timeout). Returns early if the server
/// itself stops.
pub async fn run_until(
    server: Server,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let handle = server.handle();
    let mut running = tokio::spawn(server);
    tokio::select! {
        result = &mut running => return result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        () = shutdown.cancelled() => {}
    }
    handle.stop(true).await;
    running
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
