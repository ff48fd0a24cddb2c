use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// webhook-ingest's figures (prefix `ingest_`).
#[derive(Clone)]
pub struct IngestMetrics {
    pub received: IntCounter,
    pub rejected: IntCounterVec,
    pub enqueued: IntCounterVec,
    confirm_latency: Histogram,
    broker_connected: IntGauge,
    republished: IntCounter,
}

pub use domain::webhook::type_label;

impl IngestMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let received = IntCounter::new("webhooks_received_total", "Webhook requests received")?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "webhooks_rejected_total",
                "Webhook requests refused, by reason",
            ),
            &["reason"],
        )?;
        let enqueued = IntCounterVec::new(
            Opts::new(
                "webhooks_enqueued_total",
                "Webhooks confirmed by RabbitMQ, by event type",
            ),
            &["type"],
        )?;
        let confirm_latency = Histogram::with_opts(
            HistogramOpts::new("publish_confirm_seconds", "Publish to broker confirm").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            ),
        )?;
        let broker_connected = IntGauge::new("broker_connected", "1 while connected to RabbitMQ")?;
        registry.register(Box::new(received.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(enqueued.clone()))?;
        registry.register(Box::new(confirm_latency.clone()))?;
        let republished = IntCounter::new(
            "publish_republished_total",
            "Webhooks sent again on a new broker connection before their confirm",
        )?;
        registry.register(Box::new(broker_connected.clone()))?;
        registry.register(Box::new(republished.clone()))?;
        Ok(Self {
            received,
            rejected,
            enqueued,
            confirm_latency,
            broker_connected,
            republished,
        })
    }

    pub fn reject(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }
}

impl messaging::PublisherMetrics for IngestMetrics {
    fn confirmed(&self, latency: Duration) {
        self.confirm_latency.observe(latency.as_secs_f64());
    }

    fn connected(&self, connected: bool) {
        self.broker_connected.set(i64::from(connected));
    }

    fn republished(&self) {
        self.republished.inc();
    }
}
