use std::{net::TcpListener, time::Duration};

use actix_web::{dev::Server, web};
use anyhow::Context;
use web_common::{BodyLimit, HttpMetrics, ServerOptions};
use whereby::{RecordingDestination, RecordingFileFormat, RecordingProvider, WherebyMetrics};

use crate::{
    RoomApiSettings,
    auth::Authenticator,
    routes,
    state::{AppState, ScrapeGauges},
};

pub struct Application {
    port: u16,
    server: Server,
    background: tokio_util::sync::CancellationToken,
}

impl Application {
    /// Builds everything and binds the listener (port 0 picks a free port).
    /// Migrations run first when `DATABASE_MIGRATE_ON_START` is set.
    pub async fn build(settings: RoomApiSettings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.http.room_api_addr)
            .with_context(|| format!("cannot listen on {}", settings.http.room_api_addr))?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: RoomApiSettings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let pool = db::open(&settings.database).await?;

        let registry = telemetry::service_registry("roomapi")?;
        let http_metrics = HttpMetrics::register(&registry)?;
        let whereby = whereby::WherebyClient::from_settings(
            &settings.whereby,
            Some(WherebyMetrics::register(&registry)?),
        )?;
        let (authenticator, key_refresh) =
            Authenticator::from_settings(&settings.auth, &settings.access, &registry)?;
        let authenticator = web::Data::new(authenticator);
        // Loaded once before serving; a set that cannot be loaded yet keeps
        // `/readyz` false until its refresh loop loads it.
        key_refresh.load_all().await;
        let s = &settings.storage;
        let state = web::Data::new(AppState {
            pool,
            whereby,
            recording_destination: RecordingDestination {
                provider: RecordingProvider::S3,
                bucket: s.recording_storage_aws_bucket_name.clone(),
                access_key_id: s.aws_whereby_access_key_id.clone(),
                access_key_secret: s.aws_whereby_access_key_secret.clone(),
                file_format: RecordingFileFormat::Mp4,
            },
            meeting_duration: settings.meetings.duration(),
            s3: storage::s3_client(&storage::sdk_config(&settings.aws).await),
            download_url_valid_for: Duration::from_secs(
                settings
                    .access
                    .recording_download_url_seconds
                    .clamp(1, 7 * 24 * 3600),
            ),
            gauges: ScrapeGauges::register(
                &registry,
                settings.meetings.whereby_plan_meeting_limit,
            )?,
            branding_outcomes: {
                let c = prometheus::IntCounterVec::new(
                    prometheus::Opts::new(
                        "branding_attempts_total",
                        "Attempts to apply a room's branding to a Whereby meeting, by outcome",
                    ),
                    &["outcome"],
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            tasks: telemetry::Supervisor::register(&registry)?,
            default_branding: settings.meetings.default_branding()?,
            schema: if settings.database.database_migrate_on_start {
                db::migrate::SchemaGate::current()
            } else {
                db::migrate::SchemaGate::new()
            },
        });
        // Pending branding is tried again in the background, supervised, until the
        // server has drained.
        let background = tokio_util::sync::CancellationToken::new();
        if settings.http.branding_retry_seconds > 0 {
            let every = Duration::from_secs(settings.http.branding_retry_seconds);
            let (st, token) = (state.clone(), background.clone());
            state
                .tasks
                .spawn("branding_retry", background.clone(), move || {
                    crate::branding::retry_pending(st.clone(), every, token.clone())
                });
        }

        for set in &key_refresh.sets {
            let (set, every, token) = (set.clone(), key_refresh.every, background.clone());
            state.tasks.spawn(set.task(), background.clone(), move || {
                set.clone().keep_fresh(every, token.clone())
            });
        }
        let key_refresh = web::Data::new(key_refresh);

        let port = listener.local_addr()?.port();
        let body_limit = web::Data::new(BodyLimit(settings.http.room_api_body_limit_bytes));
        let options = ServerOptions {
            workers: settings.http.room_api_workers,
            shutdown_timeout: Duration::from_secs(settings.http.room_api_shutdown_seconds),
            deadline: Some(Duration::from_secs(
                settings.http.room_api_request_timeout_seconds,
            )),
        };
        let server = web_common::serve(listener, options, registry, http_metrics, move |cfg| {
            cfg.app_data(state.clone())
                .app_data(authenticator.clone())
                .app_data(key_refresh.clone())
                .app_data(body_limit.clone());
            routes::configure(cfg);
        })?;
        tracing::info!(port, "room-api listening");
        Ok(Self {
            port,
            server,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn run(self, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
        let result = web_common::run_until(self.server, shutdown).await;
        self.background.cancel();
        Ok(result?)
    }
}
