//! Whereby's REST API (<https://api.whereby.dev/v1>), as its official OpenAPI spec
//! describes it. Webhook signing and verification will join this crate.

mod client;
mod types;

pub use client::{RetryPolicy, WherebyClient, WherebyError, WherebyMetrics};
pub use types::{
    CreateMeeting, Meeting, Recording, RecordingDestination, RecordingFileFormat, RecordingProvider,
};
