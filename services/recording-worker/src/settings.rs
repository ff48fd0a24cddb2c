use serde::Deserialize;
use settings::{
    AmqpSettings, AwsSettings, Checks, DatabaseSettings, LogSettings, SettingsError, Source,
    WherebySettings,
};

/// Everything recording-worker reads; see docs/configuration.md.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub worker: WorkerSection,
    pub recordings: RecordingSettings,
    pub jobs: JobSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub aws: AwsSettings,
    /// For deleting ended meetings at Whereby.
    pub whereby: WherebySettings,
    pub log: LogSettings,
}

impl WorkerSettings {
    /// Every key recording-worker reads, for `--help` (from the sections themselves).
    pub fn keys() -> Vec<String> {
        use settings::keys_of;
        [
            keys_of::<WorkerSection>(),
            keys_of::<RecordingSettings>(),
            keys_of::<JobSettings>(),
            keys_of::<DatabaseSettings>(),
            keys_of::<AmqpSettings>(),
            keys_of::<AwsSettings>(),
            keys_of::<WherebySettings>(),
            keys_of::<LogSettings>(),
        ]
        .concat()
    }

    pub fn load() -> Result<Self, SettingsError> {
        Self::from_source(&Source::load()?)
    }

    pub fn from_source(source: &Source) -> Result<Self, SettingsError> {
        let mut reader = source.reader();
        let settings = Self {
            worker: reader.section()?,
            recordings: reader.section()?,
            jobs: reader.section()?,
            database: reader.section()?,
            amqp: reader.section()?,
            aws: reader.section()?,
            whereby: reader.section()?,
            log: reader.section()?,
        };
        reader.check(settings.database.check());
        reader.check(settings.whereby.check());
        reader.check(settings.amqp.check());
        reader.check(settings.check_own());
        reader.finish()?;
        Ok(settings)
    }

    /// The range checks of the worker's own settings.
    fn check_own(&self) -> Result<(), SettingsError> {
        let mut checks = Checks::default();
        let w = &self.worker;
        checks.range("WORKER_PREFETCH", u64::from(w.worker_prefetch), 1..=2000);
        checks.range("WORKER_BATCH_SIZE", w.worker_batch_size as u64, 1..=1000);
        checks.range("WORKER_BATCH_LINGER_MS", w.worker_batch_linger_ms, 0..=100);
        checks.range(
            "WORKER_SHUTDOWN_SECONDS",
            w.worker_shutdown_seconds,
            1..=600,
        );
        let j = &self.jobs;
        checks.range(
            "PERSONAL_DATA_RETENTION_DAYS",
            u64::from(j.personal_data_retention_days),
            1..=3650,
        );
        checks.range(
            "INBOX_RETENTION_DAYS",
            u64::from(j.inbox_retention_days),
            u64::from(j.personal_data_retention_days).max(2)..=3650,
        );
        let r = &self.recordings;
        checks.range(
            "SQS_POLLING_TIMEOUT_SECONDS",
            r.sqs_polling_timeout_seconds,
            1..=3600,
        );
        checks.range(
            "SQS_VISIBILITY_TIMEOUT_SECONDS",
            r.sqs_visibility_timeout_seconds,
            2..=43_200,
        );
        checks.done()
    }
}

fn default_addr() -> String {
    "0.0.0.0:8082".to_owned()
}
const fn default_prefetch() -> u16 {
    200
}
const fn default_batch() -> usize {
    100
}

const fn default_linger() -> u64 {
    5
}
const fn default_shutdown() -> u64 {
    20
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSection {
    /// `WORKER_ADDR`: health and metrics.
    #[serde(default = "default_addr")]
    pub worker_addr: String,
    /// `WORKER_PREFETCH`: unacknowledged deliveries the broker sends ahead.
    #[serde(default = "default_prefetch")]
    pub worker_prefetch: u16,
    /// `WORKER_BATCH_SIZE`: deliveries applied in one transaction at most (one
    /// commit for many events; a batch is only what has already arrived).
    #[serde(default = "default_batch")]
    pub worker_batch_size: usize,
    /// `WORKER_BATCH_LINGER_MS`: how long a batch waits, from its first delivery,
    /// for more to join (0: only what has already arrived). A few milliseconds
    /// turn a steady trickle into batches: one commit and one ack for several
    /// events instead of one each.
    #[serde(default = "default_linger")]
    pub worker_batch_linger_ms: u64,
    /// `WORKER_SHUTDOWN_SECONDS`: on SIGTERM, time to finish what is in hand.
    #[serde(default = "default_shutdown")]
    pub worker_shutdown_seconds: u64,
    /// Test only (the fault suite): enables `POST /admin/faults/consumer_panic`,
    /// which makes the consume loop panic once. Never set in production.
    #[serde(default)]
    pub worker_fault_injection: bool,
}

impl Default for WorkerSection {
    fn default() -> Self {
        Self {
            worker_addr: default_addr(),
            worker_prefetch: default_prefetch(),
            worker_batch_size: default_batch(),
            worker_batch_linger_ms: default_linger(),
            worker_shutdown_seconds: default_shutdown(),
            worker_fault_injection: false,
        }
    }
}

const fn default_polling() -> u64 {
    60
}
const fn default_visibility() -> u64 {
    120
}

/// The recording half: where recordings land and how uploads are announced.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordingSettings {
    /// `RECORDING_STORAGE_AWS_BUCKET_NAME`: `bucket` or `bucket/sub/folder`, as given
    /// to Whereby. Needed to match `recording.finished` webhooks and for the scan.
    #[serde(default)]
    pub recording_storage_aws_bucket_name: Option<String>,
    /// `AWS_PROCESS_RECORDING_QUEUE_URL`: the SQS queue S3 notifies; unset, no polling.
    #[serde(default)]
    pub aws_process_recording_queue_url: Option<String>,
    /// `SQS_POLLING_TIMEOUT_SECONDS`: how long one poll waits for messages. SQS
    /// allows at most 20 s per receive, so longer values mean back-to-back 20 s
    /// long polls (the poller never sleeps between them).
    #[serde(default = "default_polling")]
    pub sqs_polling_timeout_seconds: u64,
    /// `SQS_VISIBILITY_TIMEOUT_SECONDS`: how long a received message stays hidden;
    /// extended while a message is still being handled.
    #[serde(default = "default_visibility")]
    pub sqs_visibility_timeout_seconds: u64,
    /// `RECORDING_RETENTION_DAYS`:
    /// delete from S3 what the pipeline finished this many days ago (unset: never).
    #[serde(default)]
    pub recording_retention_days: Option<u32>,
}

const fn default_scan_interval() -> u64 {
    3600
}
const fn default_retention_interval() -> u64 {
    3600
}
const fn default_cleanup_interval() -> u64 {
    300
}
const fn default_grace() -> u64 {
    900
}

/// The scheduled jobs' intervals; 0 turns a job off.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    #[serde(default = "default_scan_interval")]
    pub job_scan_interval_seconds: u64,
    #[serde(default = "default_retention_interval")]
    pub job_retention_interval_seconds: u64,
    #[serde(default = "default_cleanup_interval")]
    pub job_meeting_cleanup_interval_seconds: u64,
    /// A meeting whose session ended with nobody left is ended after this long.
    #[serde(default = "default_grace")]
    pub meeting_empty_grace_seconds: u64,
    /// The personal-data retention job (0: off).
    #[serde(default = "default_retention_interval")]
    pub job_personal_data_interval_seconds: u64,
    /// Days after which participants' names and external ids are removed and
    /// webhook payloads reduced to what deduplication needs.
    #[serde(default = "default_personal_data_days")]
    pub personal_data_retention_days: u32,
    /// Days after which inbox rows are deleted (long past any redelivery).
    #[serde(default = "default_inbox_days")]
    pub inbox_retention_days: u32,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            job_scan_interval_seconds: default_scan_interval(),
            job_retention_interval_seconds: default_retention_interval(),
            job_meeting_cleanup_interval_seconds: default_cleanup_interval(),
            meeting_empty_grace_seconds: default_grace(),
            job_personal_data_interval_seconds: default_retention_interval(),
            personal_data_retention_days: default_personal_data_days(),
            inbox_retention_days: default_inbox_days(),
        }
    }
}

const fn default_personal_data_days() -> u32 {
    30
}
const fn default_inbox_days() -> u32 {
    90
}
