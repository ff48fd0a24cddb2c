//! recording-worker: consumes the webhook events webhook-ingest enqueued and applies
//! them to Postgres exactly once (inbox + effects in one transaction, ack after
//! commit). The recording half (S3/SQS) and housekeeping come next.

pub mod apply;
pub mod consumer;
pub mod metrics;
pub mod settings;
pub mod startup;

pub use settings::WorkerSettings;
pub use startup::Application;
