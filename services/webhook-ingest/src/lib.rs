//! webhook-ingest: the Whereby webhook target (`POST /v1/whereby`).
//!
//! It verifies the signature over the raw body, checks the event's envelope, and
//! publishes it to RabbitMQ; it answers 200 only once the broker has confirmed the
//! message as routed to a queue, and 503 otherwise so that Whereby retries. It has
//! no database: deduplication happens in recording-worker.

pub mod limiter;
pub mod metrics;
pub mod routes;
pub mod settings;
pub mod startup;

pub use settings::IngestSettings;
pub use startup::Application;
