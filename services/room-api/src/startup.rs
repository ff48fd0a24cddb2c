use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use db::DbPool;
use prometheus::Registry;
use web_common::{BodyLimit, HttpMetrics, RequestDeadline};
use whereby::{
    RecordingDestination, RecordingFileFormat, RecordingProvider, WherebyClient, WherebyMetrics,
};

use crate::{
    RoomApiSettings,
    auth::{JwtVerifier, SharedVerifier},
    routes,
};

/// What every request handler shares.
pub struct AppState {
    pub pool: DbPool,
    pub whereby: WherebyClient,
    /// Where Whereby's cloud recorder uploads: our bucket and its access key.
    pub recording_destination: RecordingDestination,
    pub meeting_duration: Duration,
    pub verifier: SharedVerifier,
    /// For presigned recording download URLs.
    pub s3: storage::aws_sdk_s3::Client,
    pub download_url_valid_for: Duration,
    pub service_subjects: Vec<String>,
    pub operator_subjects: Vec<String>,
    pub gauges: ScrapeGauges,
    /// Branding attempts by outcome (`applied`, `pending`, `failed`).
    pub branding_outcomes: prometheus::IntCounterVec,
    /// Background loops (the branding retry); `/readyz` is false while one is down.
    pub tasks: telemetry::Supervisor,
    /// The organisation's branding for rooms without their own.
    pub default_branding: Option<db::branding::Branding>,
}

/// Figures refreshed when prometheus scrapes: active meetings against the plan's
/// limit, the database pool, and recordings and their bytes by status (storage
/// use and cost, from our own table).
#[derive(Clone)]
pub struct ScrapeGauges {
    active_meetings: prometheus::IntGauge,
    pool: prometheus::IntGaugeVec,
    recordings: prometheus::IntGaugeVec,
    recording_bytes: prometheus::IntGaugeVec,
}

impl ScrapeGauges {
    fn register(registry: &Registry, plan_limit: Option<u32>) -> Result<Self, prometheus::Error> {
        let active_meetings = prometheus::IntGauge::new(
            "active_meetings",
            "Meetings active and not past their end date",
        )?;
        // Only exported when known: a 0 would read as "no meetings allowed" and
        // fire the capacity alert.
        if let Some(limit) = plan_limit {
            let plan = prometheus::IntGauge::new(
                "whereby_plan_meeting_limit",
                "Concurrent meetings the Whereby plan allows (WHEREBY_PLAN_MEETING_LIMIT)",
            )?;
            plan.set(i64::from(limit));
            registry.register(Box::new(plan))?;
        }
        let pool = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "db_pool_connections",
                "Database pool connections by state (size, available, waiting)",
            ),
            &["state"],
        )?;
        let recordings = prometheus::IntGaugeVec::new(
            prometheus::Opts::new("recordings", "Recordings by status (our table)"),
            &["status"],
        )?;
        let recording_bytes = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "recording_bytes",
                "Bytes of the recordings by status (our table; deleted and erased ones are no longer stored)",
            ),
            &["status"],
        )?;
        // Every status is exported, 0 included: the label set is the fixed list.
        for status in domain::recording::RecordingStatus::ALL {
            recordings.with_label_values(&[status.as_str()]).set(0);
            recording_bytes.with_label_values(&[status.as_str()]).set(0);
        }
        registry.register(Box::new(active_meetings.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(recordings.clone()))?;
        registry.register(Box::new(recording_bytes.clone()))?;
        Ok(Self {
            active_meetings,
            pool,
            recordings,
            recording_bytes,
        })
    }

    pub async fn refresh(&self, db: &DbPool) {
        for (state, count) in db::pool_counts(db) {
            self.pool.with_label_values(&[state]).set(count);
        }
        let Ok(mut conn) = db.get().await else {
            return;
        };
        if let Ok(n) = db::meetings::count_active(&mut conn).await {
            self.active_meetings.set(n);
        }
        if let Ok(rows) = db::privacy::recordings_by_status(&mut conn).await {
            for status in domain::recording::RecordingStatus::ALL {
                let (n, bytes) = rows
                    .iter()
                    .find(|(s, _, _)| s == status.as_str())
                    .map_or((0, 0), |(_, n, b)| (*n, *b));
                self.recordings.with_label_values(&[status.as_str()]).set(n);
                self.recording_bytes
                    .with_label_values(&[status.as_str()])
                    .set(bytes);
            }
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    shutdown: tokio_util::sync::CancellationToken,
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
        let pool = db::open(&settings.database)
            .await
            .map_err(anyhow::Error::msg)?;

        let registry = Registry::new_custom(Some("roomapi".to_owned()), None)?;
        let http_metrics = HttpMetrics::register(&registry)?;
        let whereby = whereby::WherebyClient::from_settings(
            &settings.whereby,
            Some(WherebyMetrics::register(&registry)?),
        )?;
        let verifier =
            Arc::new(JwtVerifier::from_settings(&settings.auth).map_err(anyhow::Error::msg)?);
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
            verifier,
            s3: storage::s3_client(&storage::sdk_config(&settings.aws).await),
            download_url_valid_for: Duration::from_secs(
                settings
                    .access
                    .recording_download_url_seconds
                    .clamp(1, 7 * 24 * 3600),
            ),
            service_subjects: settings.access.service_subjects(),
            operator_subjects: settings.access.operator_subjects(),
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
        });
        // Pending branding is tried again in the background, supervised.
        let shutdown = tokio_util::sync::CancellationToken::new();
        if settings.http.branding_retry_seconds > 0 {
            let every = Duration::from_secs(settings.http.branding_retry_seconds);
            let (st, token) = (state.clone(), shutdown.clone());
            state
                .tasks
                .spawn("branding_retry", shutdown.clone(), move || {
                    crate::branding::retry_pending(st.clone(), every, token.clone())
                });
        }

        let port = listener.local_addr()?.port();
        let registry = web::Data::new(registry);
        let http_metrics = web::Data::new(http_metrics);
        let body_limit = web::Data::new(BodyLimit(settings.http.room_api_body_limit_bytes));
        let deadline = web::Data::new(RequestDeadline(Duration::from_secs(
            settings.http.room_api_request_timeout_seconds,
        )));
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(web_common::request_deadline))
                .wrap(from_fn(web_common::request_context))
                .app_data(deadline.clone())
                .app_data(state.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .app_data(body_limit.clone())
                .configure(routes::configure)
        })
        .shutdown_timeout(settings.http.room_api_shutdown_seconds)
        .listen(listener)?;
        if let Some(workers) = settings.http.room_api_workers {
            server = server.workers(workers.max(1));
        }
        tracing::info!(port, "room-api listening");
        Ok(Self {
            port,
            server: server.run(),
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.shutdown.cancel();
        result
    }

    /// Splits off a handle to stop the server from elsewhere (tests).
    pub fn into_parts(self) -> (u16, Server) {
        (self.port, self.server)
    }
}
