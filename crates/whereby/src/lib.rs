//! Whereby's REST API (<https://api.whereby.dev/v1>), as its official OpenAPI spec
//! describes it, and its webhook signatures.

mod client;
mod types;
pub mod webhook;

pub use client::{
    RetryPolicy, ThemeBackground, ThemeColors, ThemeImage, WherebyClient, WherebyError,
    WherebyMetrics,
};
pub use types::{
    CreateMeeting, Meeting, Recording, RecordingDestination, RecordingFileFormat, RecordingProvider,
};
