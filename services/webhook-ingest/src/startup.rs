use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{dev::Server, web};
use anyhow::Context;
use messaging::{Publisher, Topology};
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use web_common::{HttpMetrics, ServerOptions};

use crate::{IngestSettings, metrics::IngestMetrics, routes};

pub struct Application {
    port: u16,
    server: Server,
    publisher: Publisher,
    background: CancellationToken,
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
        let registry = telemetry::service_registry("ingest")?;
        let http_metrics = HttpMetrics::register(&registry)?;
        let metrics = IngestMetrics::register(&registry)?;
        let topology = Topology::from_settings(&settings.amqp);
        let publisher = Publisher::new(
            settings.amqp.amqp_url.expose_secret(),
            "webhook-ingest",
            topology,
            Duration::from_secs(settings.amqp.amqp_connect_timeout_seconds),
            Some(Arc::new(metrics.clone())),
        );
        // The background loops' token: cancelled once the HTTP server has drained,
        // so that webhooks in flight can still publish.
        let background = CancellationToken::new();
        // The publisher's connection loop, supervised: restarted after a panic,
        // counted, and /readyz says false while it is down.
        let tasks = telemetry::Supervisor::register(&registry)?;
        let (p, s) = (publisher.clone(), background.clone());
        let supervisor = tasks.spawn("publisher", background.clone(), move || {
            let (publisher, shutdown) = (p.clone(), s.clone());
            async move { publisher.maintain(shutdown).await }
        });

        let state = web::Data::new(routes::IngestState {
            publisher: publisher.clone(),
            secrets: settings
                .webhook
                .whereby_webhook_secret
                .iter()
                .map(|s| s.expose_secret().as_bytes().to_vec())
                .collect(),
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
        let options = ServerOptions {
            workers: settings.http.webhook_ingest_workers,
            shutdown_timeout: Duration::from_secs(settings.http.webhook_ingest_shutdown_seconds),
            deadline: None,
        };
        let server = web_common::serve(listener, options, registry, http_metrics, move |cfg| {
            cfg.app_data(state.clone());
            routes::configure(cfg);
        })?;
        tracing::info!(port, "webhook-ingest listening");
        Ok(Self {
            port,
            server,
            publisher,
            background,
            supervisor,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Serves until `shutdown` is cancelled: stops accepting, lets in-flight
    /// webhooks finish their publish and confirm, then closes the broker connection.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let result = web_common::run_until(self.server, shutdown).await;
        self.background.cancel();
        let _ = self.supervisor.await;
        Ok(result?)
    }
}
