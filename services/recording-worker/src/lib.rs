//! recording-worker: consumes the webhook events webhook-ingest enqueued and applies
//! them to Postgres exactly once (inbox + effects in one transaction, ack after
//! commit); polls SQS for S3 "recording uploaded" notifications, records each
//! recording and hands it to the transcription pipeline; runs the housekeeping
//! jobs (catch-up scan, retention, meeting clean-up).

pub mod apply;
pub mod consumer;
pub mod intake;
pub mod jobs;
pub mod metrics;
pub mod settings;
pub mod sqs;
pub mod startup;

pub use settings::WorkerSettings;
pub use startup::Application;
