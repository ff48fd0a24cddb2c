use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use messaging::{Publisher, Topology};
use prometheus::Registry;
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use web_common::HttpMetrics;

use crate::{IngestSettings, metrics::IngestMetrics, routes};

pub struct Application {
    port: u16,
    server: Server,
    publisher: Publisher,
    shutdown: CancellationToken,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Application {
    pub async fn build(settings: IngestSettings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.http.webhook_ingest_addr)
            .with_context(|| format!("cannot listen on {}", settings.http.webhook_ingest_addr))?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: IngestSettings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("ingest".to_owned()), None)?;
        let http_metrics = HttpMetrics::register(&registry)?;
        let metrics = IngestMetrics::register(&registry)?;
        let topology = Topology::from_settings(&settings.amqp)?;
        let publisher = Publisher::new(
            settings.amqp.amqp_url.expose_secret(),
            "webhook-ingest",
            topology,
            Duration::from_secs(settings.amqp.amqp_connect_timeout_seconds),
            Some(Arc::new(metrics.clone())),
        );
        // One shutdown token: cancelled after the HTTP server has drained.
        let shutdown = CancellationToken::new();
        // The publisher's connection loop, supervised: restarted after a panic,
        // counted, and /readyz says false while it is down.
        let tasks = telemetry::Supervisor::register(&registry)?;
        let (p, s) = (publisher.clone(), shutdown.clone());
        let supervisor = tasks.spawn("publisher", shutdown.clone(), move || {
            let (publisher, shutdown) = (p.clone(), s.clone());
            async move { publisher.maintain(shutdown).await }
        });

        let state = web::Data::new(routes::IngestState {
            publisher: publisher.clone(),
            secrets: settings.webhook.secrets(),
            tolerance_secs: settings.webhook.whereby_webhook_tolerance_seconds,
            body_limit: settings.http.webhook_body_limit_bytes,
            body_budget: settings.http.body_budget(),
            body_timeout: Duration::from_secs(settings.http.webhook_body_timeout_seconds),
            publish_timeout: Duration::from_millis(settings.amqp.amqp_publish_timeout_ms),
            in_flight: Arc::new(Semaphore::new(settings.http.webhook_max_in_flight.max(1))),
            metrics,
            tasks,
            limiter: crate::limiter::FailureLimiter::new(settings.http.failure_limit()),
            client_address_header: settings
                .http
                .webhook_client_address_header
                .as_deref()
                .map(actix_web::http::header::HeaderName::try_from)
                .transpose()
                .context("WEBHOOK_CLIENT_ADDRESS_HEADER is not a header name")?,
            trusted_proxy_hops: settings.http.webhook_trusted_proxy_hops,
        });
        let port = listener.local_addr()?.port();
        let registry = web::Data::new(registry);
        let http_metrics = web::Data::new(http_metrics);
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(web_common::request_context))
                .app_data(state.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .configure(routes::configure)
        })
        .shutdown_timeout(settings.http.webhook_ingest_shutdown_seconds)
        .listen(listener)?;
        if let Some(workers) = settings.http.webhook_ingest_workers {
            server = server.workers(workers.max(1));
        }
        tracing::info!(port, "webhook-ingest listening");
        Ok(Self {
            port,
            server: server.run(),
            publisher,
            shutdown,
            supervisor,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Serves until SIGTERM/SIGINT: stops accepting, lets in-flight webhooks finish
    /// their publish and confirm, then closes the broker connection.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.shutdown.cancel();
        let _ = self.supervisor.await;
        result
    }

    /// For tests: the server future, its shutdown token and the publisher.
    pub fn into_parts(self) -> (u16, Server, CancellationToken, Publisher) {
        (self.port, self.server, self.shutdown, self.publisher)
    }
}
