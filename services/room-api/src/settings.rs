use std::time::Duration;

use serde::Deserialize;
use settings::{
    AuthSettings, AwsSettings, Checks, DatabaseSettings, LogSettings, RecordingStorageSettings,
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
    /// Every key room-api reads, for `--help` (from the sections themselves).
    pub fn keys() -> Vec<String> {
        use settings::keys_of;
        [
            keys_of::<HttpSettings>(),
            keys_of::<DatabaseSettings>(),
            keys_of::<WherebySettings>(),
            keys_of::<RecordingStorageSettings>(),
            keys_of::<AuthSettings>(),
            keys_of::<MeetingSettings>(),
            keys_of::<AccessSettings>(),
            keys_of::<AwsSettings>(),
            keys_of::<LogSettings>(),
        ]
        .concat()
    }

    pub fn from_source(source: &Source) -> Result<Self, SettingsError> {
        let mut reader = source.reader();
        let settings = Self {
            http: reader.section()?,
            database: reader.section()?,
            whereby: reader.section()?,
            storage: reader.section()?,
            auth: reader.section()?,
            meetings: reader.section()?,
            access: reader.section()?,
            aws: reader.section()?,
            log: reader.section()?,
        };
        reader.check(settings.database.check());
        reader.check(settings.whereby.check());
        reader.check(settings.auth.check());
        reader.check(settings::check_range(
            "ROOM_API_REQUEST_TIMEOUT_SECONDS",
            settings.http.room_api_request_timeout_seconds,
            1..=600,
        ));
        // Checked here so that its problems join the others in one error; read
        // again (a bounded file) when the application is built.
        reader.check(settings.meetings.default_branding().map(drop));
        reader.finish()?;
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
    /// `BRANDING_RETRY_SECONDS`: how often pending branding is tried again (0: never).
    #[serde(default = "default_branding_retry")]
    pub branding_retry_seconds: u64,
}

const fn default_branding_retry() -> u64 {
    30
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
    /// The organisation's default branding, for rooms without their own:
    /// `BRANDING_DEFAULT_PRIMARY_COLOR` / `_SECONDARY_COLOR` / `_FOCUS_COLOR`
    /// (`#rrggbb`), `BRANDING_DEFAULT_LOGO_FILE` (a PNG or JPEG file) and
    /// `BRANDING_DEFAULT_BACKGROUND` (a preset, `palette/theme`).
    #[serde(default)]
    pub branding_default_primary_color: Option<String>,
    #[serde(default)]
    pub branding_default_secondary_color: Option<String>,
    #[serde(default)]
    pub branding_default_focus_color: Option<String>,
    #[serde(default)]
    pub branding_default_logo_file: Option<String>,
    #[serde(default)]
    pub branding_default_background: Option<String>,
}

impl MeetingSettings {
    /// The default branding, read and checked at start-up (`None`: none set).
    /// Every bad key is named at once; the logo file is read no further than the
    /// largest image allowed.
    pub fn default_branding(&self) -> Result<Option<db::branding::Branding>, SettingsError> {
        use std::io::Read;

        use domain::branding::{MAX_IMAGE_BYTES, is_background_preset, parse_color, sniff_image};
        let mut checks = Checks::default();
        let mut color = |name: &str, v: &Option<String>| {
            let parsed = v.as_deref().map(parse_color);
            checks.require(!matches!(parsed, Some(None)), name, "must be #rrggbb");
            parsed.flatten()
        };
        let mut b = db::branding::Branding {
            primary_color: color(
                "BRANDING_DEFAULT_PRIMARY_COLOR",
                &self.branding_default_primary_color,
            ),
            secondary_color: color(
                "BRANDING_DEFAULT_SECONDARY_COLOR",
                &self.branding_default_secondary_color,
            ),
            focus_color: color(
                "BRANDING_DEFAULT_FOCUS_COLOR",
                &self.branding_default_focus_color,
            ),
            ..db::branding::Branding::default()
        };
        if let Some(path) = &self.branding_default_logo_file {
            let mut bytes = Vec::new();
            let read = std::fs::File::open(path)
                .and_then(|f| f.take(MAX_IMAGE_BYTES as u64 + 1).read_to_end(&mut bytes));
            let kind = sniff_image(&bytes).filter(|_| bytes.len() <= MAX_IMAGE_BYTES);
            match (read, kind) {
                (Err(e), _) => checks.require(
                    false,
                    "BRANDING_DEFAULT_LOGO_FILE",
                    format!("cannot be read ({path}: {e})"),
                ),
                (Ok(_), None) => checks.require(
                    false,
                    "BRANDING_DEFAULT_LOGO_FILE",
                    format!(
                        "must be a PNG or JPEG of at most {} KiB",
                        MAX_IMAGE_BYTES / 1024
                    ),
                ),
                (Ok(_), Some(kind)) => {
                    b.logo_content_type = Some(kind.to_owned());
                    b.logo = Some(bytes);
                }
            }
        }
        if let Some(preset) = &self.branding_default_background {
            match preset
                .split_once('/')
                .filter(|(p, t)| is_background_preset(p, t))
            {
                Some((palette, theme)) => {
                    b.background_palette = Some(palette.to_owned());
                    b.background_theme = Some(theme.to_owned());
                }
                None => checks.require(
                    false,
                    "BRANDING_DEFAULT_BACKGROUND",
                    "must be palette/theme, e.g. grey/mountains",
                ),
            }
        }
        checks.done()?;
        Ok((!b.is_empty()).then_some(b))
    }

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
    #[serde(default, deserialize_with = "settings::comma_list")]
    pub auth_service_subjects: Vec<String>,
    /// `AUTH_OPERATOR_SUBJECTS`: callers allowed to list recordings by status
    /// (unmatched ones, say), comma-separated.
    #[serde(default, deserialize_with = "settings::comma_list")]
    pub auth_operator_subjects: Vec<String>,
    /// `RECORDING_DOWNLOAD_URL_SECONDS`: how long a presigned download URL works.
    #[serde(default = "default_download_url_seconds")]
    pub recording_download_url_seconds: u64,
}
