use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// recording-worker's figures (prefix `recworker_`).
#[derive(Clone)]
pub struct WorkerMetrics {
    pub consumed: IntCounter,
    /// By outcome: applied, duplicate, stored, unmatched.
    pub outcomes: IntCounterVec,
    pub retried: IntCounter,
    pub dead_lettered: IntCounter,
    pub database_waits: IntCounter,
    /// Events handled, by (bounded) Whereby event type.
    pub by_type: IntCounterVec,
    /// Age of the oldest SQS message in the last receive (from its SentTimestamp).
    pub sqs_oldest_age: prometheus::Gauge,
    /// The database pool: connections open, idle, and callers waiting.
    pub pool: IntGaugeVec,
    /// Recordings by what happened: unmatched, queued (handed off).
    pub recordings: IntCounterVec,
    /// SQS messages by outcome: received, deleted, left (for a later try), unreadable.
    pub sqs: IntCounterVec,
    /// Scheduled job runs by job and outcome.
    pub jobs: IntCounterVec,
    apply_lag: Histogram,
    connected: IntGauge,
}

impl WorkerMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let consumed = IntCounter::new("events_consumed_total", "Deliveries taken from the queue")?;
        let outcomes = IntCounterVec::new(
            Opts::new(
                "events_total",
                "Events handled, by outcome (applied, duplicate, stored, unmatched)",
            ),
            &["outcome"],
        )?;
        let retried = IntCounter::new(
            "events_retried_total",
            "Events sent to a delayed retry (meeting not known yet)",
        )?;
        let dead_lettered = IntCounter::new(
            "events_dead_lettered_total",
            "Deliveries rejected to the dead-letter queue",
        )?;
        let database_waits = IntCounter::new(
            "database_waits_total",
            "Times the worker paused because Postgres was unavailable",
        )?;
        let apply_lag = Histogram::with_opts(
            HistogramOpts::new(
                "apply_lag_seconds",
                "From the event's createdAt to its commit",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        )?;
        let connected = IntGauge::new("broker_connected", "1 while consuming from RabbitMQ")?;
        let by_type = IntCounterVec::new(
            Opts::new(
                "events_by_type_total",
                "Events handled, by Whereby event type",
            ),
            &["type"],
        )?;
        let sqs_oldest_age = prometheus::Gauge::new(
            "sqs_oldest_message_age_seconds",
            "Age of the oldest message in the last SQS receive",
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (size, available, waiting)",
            ),
            &["state"],
        )?;
        registry.register(Box::new(by_type.clone()))?;
        registry.register(Box::new(sqs_oldest_age.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        let recordings = IntCounterVec::new(
            Opts::new(
                "recordings_total",
                "Recordings registered, by outcome (unmatched, queued)",
            ),
            &["outcome"],
        )?;
        let sqs = IntCounterVec::new(
            Opts::new(
                "sqs_messages_total",
                "SQS messages, by outcome (received, deleted, left, unreadable)",
            ),
            &["outcome"],
        )?;
        let jobs = IntCounterVec::new(
            Opts::new(
                "job_runs_total",
                "Scheduled job runs, by job and outcome (ok, failed, skipped)",
            ),
            &["job", "outcome"],
        )?;
        for v in [&recordings, &sqs, &jobs] {
            registry.register(Box::new(v.clone()))?;
        }
        for c in [&consumed, &retried, &dead_lettered, &database_waits] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(outcomes.clone()))?;
        registry.register(Box::new(apply_lag.clone()))?;
        registry.register(Box::new(connected.clone()))?;
        Ok(Self {
            consumed,
            outcomes,
            retried,
            dead_lettered,
            database_waits,
            by_type,
            sqs_oldest_age,
            pool,
            recordings,
            sqs,
            jobs,
            apply_lag,
            connected,
        })
    }

    pub fn lag(&self, lag: Duration) {
        self.apply_lag.observe(lag.as_secs_f64());
    }

    pub fn set_connected(&self, connected: bool) {
        self.connected.set(i64::from(connected));
    }
}

impl WorkerMetrics {
    /// Refreshes the pool gauges (called at scrape time).
    pub fn observe_pool(&self, pool: &db::DbPool) {
        for (state, count) in db::pool_counts(pool) {
            self.pool.with_label_values(&[state]).set(count);
        }
    }
}
