use std::time::Duration;

use serde::Deserialize;
use settings::{
    AuthSettings, AwsSettings, DatabaseSettings, LogSettings, RecordingStorageSettings,
    SettingsError, Source, WherebySettings,
};

/// Everything room-api reads; see docs/configuration.md.
#[derive(Debug, Clone)]
pub struct RoomApiSettings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub whereby: WherebySettings,
    pub storage: RecordingStorageSettings,
    pub auth: AuthSettings,
    pub meetings: MeetingSettings,
    pub access: AccessSettings,
    pub aws: AwsSettings,
    pub log: LogSettings,
}

impl RoomApiSettings {
    pub fn load() -> Result<Self, SettingsError> {
        Self::from_source(&Source::load()?)
    }

    pub fn from_source(source: &Source) -> Result<Self, SettingsError> {
        let settings = Self {
            http: source.section()?,
            database: source.section()?,
            whereby: source.section()?,
            storage: source.section()?,
            auth: source.section()?,
            meetings: source.section()?,
            access: source.section()?,
            aws: source.section()?,
            log: source.section()?,
        };
        settings.database.check()?;
        settings.whereby.check()?;
        settings::check_range(
            "ROOM_API_REQUEST_TIMEOUT_SECONDS",
            settings.http.room_api_request_timeout_seconds,
            1..=600,
        )?;
        Ok(settings)
    }
}

fn default_addr() -> String {
    "0.0.0.0:8080".to_owned()
}
const fn default_body_limit() -> usize {
    16 * 1024
}
const fn default_shutdown() -> u64 {
    25
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    /// `ROOM_API_ADDR`: where the API listens.
    #[serde(default = "default_addr")]
    pub room_api_addr: String,
    /// `ROOM_API_WORKERS`: actix workers; default one per core.
    #[serde(default)]
    pub room_api_workers: Option<usize>,
    /// `ROOM_API_BODY_LIMIT_BYTES`: the largest request body (413 above it).
    #[serde(default = "default_body_limit")]
    pub room_api_body_limit_bytes: usize,
    /// `ROOM_API_SHUTDOWN_SECONDS`: how long in-flight requests may finish on SIGTERM.
    #[serde(default = "default_shutdown")]
    pub room_api_shutdown_seconds: u64,
    /// `ROOM_API_REQUEST_TIMEOUT_SECONDS`: the longest a request may take; past it,
    /// 503 (bounds every database and Whereby call behind a request; a meeting
    /// creation under way goes on and is stored for the next request).
    #[serde(default = "default_request_timeout")]
    pub room_api_request_timeout_seconds: u64,
}

const fn default_request_timeout() -> u64 {
    30
}

const fn default_duration_hours() -> u64 {
    8
}

#[derive(Debug, Clone, Deserialize)]
pub struct MeetingSettings {
    /// `MEETING_DURATION_HOURS`: a new meeting's `endDate` is now plus this.
    #[serde(default = "default_duration_hours")]
    pub meeting_duration_hours: u64,
    /// `WHEREBY_PLAN_MEETING_LIMIT`: concurrent meetings the Whereby plan allows,
    /// exported as a gauge next to the active count (for alerting); unset: unknown.
    #[serde(default)]
    pub whereby_plan_meeting_limit: Option<u32>,
}

impl MeetingSettings {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.meeting_duration_hours.saturating_mul(3600))
    }
}

const fn default_download_url_seconds() -> u64 {
    900
}

/// Who may do what beyond their own rooms, by token `sub`.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessSettings {
    /// `AUTH_SERVICE_SUBJECTS`: callers allowed on the internal routes (the
    /// processing pipeline reporting recording status), comma-separated.
    #[serde(default)]
    pub auth_service_subjects: String,
    /// `AUTH_OPERATOR_SUBJECTS`: callers allowed to list recordings by status
    /// (unmatched ones, say), comma-separated.
    #[serde(default)]
    pub auth_operator_subjects: String,
    /// `RECORDING_DOWNLOAD_URL_SECONDS`: how long a presigned download URL works.
    #[serde(default = "default_download_url_seconds")]
    pub recording_download_url_seconds: u64,
}

impl AccessSettings {
    fn list(raw: &str) -> Vec<String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn service_subjects(&self) -> Vec<String> {
        Self::list(&self.auth_service_subjects)
    }

    pub fn operator_subjects(&self) -> Vec<String> {
        Self::list(&self.auth_operator_subjects)
    }
}
