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

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        time::Duration,
    };

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_in_flight_is_answered_after_shutdown_begins() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let registry = Registry::new();
        let metrics = HttpMetrics::register(&registry).expect("metrics");
        let options = ServerOptions {
            workers: Some(1),
            shutdown_timeout: Duration::from_secs(5),
            deadline: None,
        };
        let server = serve(listener, options, registry, metrics, |cfg| {
            cfg.route(
                "/slow",
                web::get().to(|| async {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    "done"
                }),
            );
        })
        .expect("serve");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let running = tokio::spawn(run_until(server, shutdown.clone()));
        let request = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream
                .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                .expect("send");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).expect("read");
            answer
        });
        // Shutdown begins while the handler is still sleeping.
        tokio::time::sleep(Duration::from_millis(200)).await;
        shutdown.cancel();
        let answer = request.await.expect("request task");
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("done"),
            "{answer}"
        );
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("run_until returns once drained")
            .expect("task")
            .expect("server");
    }
}
