//! What every request handler shares, and the gauges refreshed on a scrape.

use std::time::Duration;

use db::DbPool;
use prometheus::Registry;
use whereby::{RecordingDestination, WherebyClient};

/// What every request handler shares.
pub struct AppState {
    pub pool: DbPool,
    pub whereby: WherebyClient,
    /// Where Whereby's cloud recorder uploads: our bucket and its access key.
    pub recording_destination: RecordingDestination,
    pub meeting_duration: Duration,
    /// For presigned recording download URLs.
    pub s3: storage::aws_sdk_s3::Client,
    pub download_url_valid_for: Duration,
    pub gauges: ScrapeGauges,
    /// Branding attempts by outcome (`applied`, `pending`, `failed`).
    pub branding_outcomes: prometheus::IntCounterVec,
    /// Background loops (the branding retry); `/readyz` is false while one is down.
    pub tasks: telemetry::Supervisor,
    /// The organisation's branding for rooms without their own.
    pub default_branding: Option<db::branding::Branding>,
    /// Whether the database has the schema this build expects (`/readyz`).
    pub schema: db::migrate::SchemaGate,
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
    pub(crate) fn register(
        registry: &Registry,
        plan_limit: Option<u32>,
    ) -> Result<Self, prometheus::Error> {
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
