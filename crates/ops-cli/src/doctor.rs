//! `doctor`: every setting and every dependency, each with a verdict and a hint.

use std::time::Duration;

use domain::recording::RecordingLocation;
use messaging::{
    Topology, connect,
    lapin::{options::QueueDeclareOptions, types::FieldTable},
};
use secrecy::ExposeSecret;
use settings::{
    AmqpSettings, AuthSettings, AwsSettings, DatabaseSettings, Source, WherebySettings,
};

use crate::{
    Options,
    output::{Check, Report},
};

/// The service whose view `doctor --for` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    RoomApi,
    WebhookIngest,
    RecordingWorker,
}

/// What a view of the system checks: everything for an operator, or what one
/// service uses, with that service's credentials (a room-api pod's IAM role may
/// not list the bucket, and need not).
#[derive(Debug, Clone, Copy)]
struct Scope {
    settings: &'static [&'static str],
    auth: bool,
    whereby_api: bool,
    postgres: bool,
    rabbitmq: bool,
    /// Listing and reading the bucket (the worker's scan and intake).
    s3_listing: bool,
    /// Writing with the key Whereby uploads with (room-api hands it to Whereby).
    s3_whereby_key: bool,
    /// The bucket's privacy settings: an operator's check (other permissions).
    s3_privacy: bool,
    sqs: bool,
}

const ALL_SETTINGS: &[&str] = &[
    "whereby_api_key",
    "whereby_webhook_secret",
    "recording_storage_aws_bucket_name",
    "aws_whereby_access_key_id",
    "aws_whereby_access_key_secret",
    "aws_process_recording_queue_url",
];

impl Scope {
    fn of(service: Option<Service>) -> Self {
        let none = Self {
            settings: &[],
            auth: false,
            whereby_api: false,
            postgres: false,
            rabbitmq: false,
            s3_listing: false,
            s3_whereby_key: false,
            s3_privacy: false,
            sqs: false,
        };
        match service {
            None => Self {
                settings: ALL_SETTINGS,
                auth: true,
                whereby_api: true,
                postgres: true,
                rabbitmq: true,
                s3_listing: true,
                s3_whereby_key: true,
                s3_privacy: true,
                sqs: true,
            },
            Some(Service::RoomApi) => Self {
                settings: &[
                    "whereby_api_key",
                    "recording_storage_aws_bucket_name",
                    "aws_whereby_access_key_id",
                    "aws_whereby_access_key_secret",
                ],
                auth: true,
                whereby_api: true,
                postgres: true,
                s3_whereby_key: true,
                ..none
            },
            Some(Service::WebhookIngest) => Self {
                settings: &["whereby_webhook_secret"],
                rabbitmq: true,
                ..none
            },
            Some(Service::RecordingWorker) => Self {
                settings: &[
                    "whereby_api_key",
                    "recording_storage_aws_bucket_name",
                    "aws_process_recording_queue_url",
                ],
                whereby_api: true,
                postgres: true,
                rabbitmq: true,
                s3_listing: true,
                sqs: true,
                ..none
            },
        }
    }
}

pub async fn run(source: &Source, o: &Options) -> Report {
    let scope = Scope::of(o.service);
    let mut report = Report::new("doctor");
    settings_present(source, scope.settings, &mut report);
    if scope.auth {
        for check in auth(source).await {
            report.push(check);
        }
    }
    if scope.whereby_api {
        report.push(whereby(source).await);
    }
    if scope.postgres {
        report.push(postgres(source).await);
    }
    if scope.rabbitmq {
        for check in rabbitmq(source).await {
            report.push(check);
        }
    }
    if scope.s3_listing || scope.s3_whereby_key || scope.s3_privacy {
        for check in s3(source, scope).await {
            report.push(check);
        }
    }
    if scope.sqs {
        report.push(sqs(source).await);
    }
    if let Some(url) = &o.webhook_health_url {
        report.push(webhook_health(url).await);
    }
    report
}

fn settings_present(source: &Source, keys: &[&str], report: &mut Report) {
    let required: [(&str, &str); 6] = [
        (
            "whereby_api_key",
            "room-api and recording-worker call Whereby with it; create it in the Whereby dashboard (Configure → API)",
        ),
        (
            "whereby_webhook_secret",
            "webhook-ingest verifies Whereby's signature with it; copy it from the webhook in the Whereby dashboard",
        ),
        (
            "recording_storage_aws_bucket_name",
            "the bucket Whereby uploads cloud recordings to",
        ),
        (
            "aws_whereby_access_key_id",
            "the access key Whereby uploads with (needs s3:PutObject on the bucket)",
        ),
        (
            "aws_whereby_access_key_secret",
            "the secret of that access key",
        ),
        (
            "aws_process_recording_queue_url",
            "the SQS queue the bucket notifies of uploads",
        ),
    ];
    for (key, hint) in required.into_iter().filter(|(k, _)| keys.contains(k)) {
        let name = format!("setting {}", key.to_uppercase());
        match source.get(key) {
            Some(_) => report.push(Check::ok(&name, "set")),
            None => report.push(Check::fail(&name, "missing", hint)),
        }
    }
}

/// room-api's token settings, by the rules room-api starts with, and each key set
/// it would fetch.
async fn auth(source: &Source) -> Vec<Check> {
    let auth = match source.section::<AuthSettings>() {
        Ok(a) => a,
        Err(e) => {
            return vec![Check::fail(
                "setting AUTH_*",
                e.to_string(),
                "see docs/configuration.md, \"Identities\"",
            )];
        }
    };
    if let Err(e) = auth.check() {
        return vec![Check::fail(
            "setting AUTH_*",
            e.to_string(),
            "see docs/configuration.md, \"Identities\"",
        )];
    }
    let mut checks = vec![Check::ok("setting AUTH_*", "a usable way to verify tokens")];
    // The key sets, loaded as room-api loads them (its CA file, token file, key
    // rules and bounds).
    let sources = match identity::KeySetSources::from_settings(&auth) {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check::fail(
                "key sets",
                e.to_string(),
                "see docs/configuration.md, \"Identities\"",
            ));
            return checks;
        }
    };
    let hint = "room-api keeps its last good key set, but cannot start ready without people's: check the URL or file and the egress to it";
    for source in [sources.people, sources.service_accounts]
        .into_iter()
        .flatten()
    {
        let name = format!("key set {}", source.name);
        match identity::Jwks::new(source, None).refresh().await {
            Ok(keys) => checks.push(Check::ok(&name, format!("{keys} usable key(s)"))),
            Err(e) => checks.push(Check::fail(&name, e.to_string(), hint)),
        }
    }
    checks
}

async fn whereby(source: &Source) -> Check {
    let Ok(w) = source.section::<WherebySettings>() else {
        return Check::skip("whereby api", "WHEREBY_API_KEY is not set");
    };
    // One attempt and a short timeout: doctor reports, it does not insist.
    let quick = WherebySettings {
        whereby_max_attempts: 1,
        whereby_timeout_seconds: w.whereby_timeout_seconds.min(10),
        ..w.clone()
    };
    let client = match whereby::WherebyClient::from_settings(&quick, None) {
        Ok(c) => c,
        Err(e) => return Check::fail("whereby api", e.to_string(), "check WHEREBY_API_URL"),
    };
    match client.check_access().await {
        Ok(()) => Check::ok(
            "whereby api",
            format!("{} accepts the API key", w.whereby_api_url),
        ),
        Err(whereby::WherebyError::Refused { status, .. }) => Check::fail(
            "whereby api",
            format!("HTTP {status}: the API key was refused"),
            "create a new key in the Whereby dashboard and set WHEREBY_API_KEY",
        ),
        Err(e) => Check::fail(
            "whereby api",
            e.to_string(),
            "check WHEREBY_API_URL and outbound HTTPS to it",
        ),
    }
}

async fn postgres(source: &Source) -> Check {
    let d = match source.section::<DatabaseSettings>() {
        Ok(d) => d,
        Err(e) => return Check::fail("postgres", e.to_string(), "set DATABASE_URL"),
    };
    match db::migrate::pending(d.database_url.expose_secret()).await {
        Ok(pending) if pending.is_empty() => {
            Check::ok("postgres", "reachable; the schema is current")
        }
        Ok(pending) => Check::fail(
            "postgres",
            format!(
                "{} migration(s) pending: {}",
                pending.len(),
                pending.join(", ")
            ),
            "run `whereby-ops migrate` (or the migration Job)",
        ),
        Err(e) => Check::fail(
            "postgres",
            e.to_string(),
            "check DATABASE_URL, the network path and the password",
        ),
    }
}

async fn rabbitmq(source: &Source) -> Vec<Check> {
    let a = match source.section::<AmqpSettings>() {
        Ok(a) => a,
        Err(e) => return vec![Check::fail("rabbitmq", e.to_string(), "set AMQP_URL")],
    };
    let conn = match connect(
        a.amqp_url.expose_secret(),
        "whereby-ops",
        Duration::from_secs(5),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "rabbitmq",
                e.to_string(),
                "check AMQP_URL (host, port, vhost, user)",
            )];
        }
    };
    let topology = Topology::from_settings(&a);
    let mut checks = vec![Check::ok("rabbitmq", "reachable")];
    for (queue, dead) in [
        (topology.worker_queue(), false),
        (topology.dead_letter_queue(), true),
        (topology.pipeline_queue(), false),
        (topology.recordings_dead_letter_queue(), true),
    ] {
        // A fresh channel per queue: a failed passive declare closes its channel.
        let Ok(channel) = conn.create_channel().await else {
            checks.push(Check::fail(
                "rabbitmq",
                "cannot open a channel",
                "see the broker's log",
            ));
            break;
        };
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        match channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await {
            Ok(q) if dead && q.message_count() > 0 => checks.push(Check::fail(
                &format!("queue {queue}"),
                format!("{} dead-lettered message(s)", q.message_count()),
                "inspect with `whereby-ops dlq list`, fix the cause, then `whereby-ops dlq replay`",
            )),
            Ok(q) => checks.push(Check::ok(&format!("queue {queue}"), format!("{} ready", q.message_count()))),
            Err(_) => checks.push(Check::fail(
                &format!("queue {queue}"),
                "missing",
                "start webhook-ingest or recording-worker once: they declare the topology (check AMQP_PREFIX)",
            )),
        }
    }
    let _ = conn.close(200, "bye".into()).await;
    checks
}

async fn s3(source: &Source, scope: Scope) -> Vec<Check> {
    let Some(setting) = source.get("recording_storage_aws_bucket_name") else {
        return vec![Check::skip(
            "s3",
            "RECORDING_STORAGE_AWS_BUCKET_NAME is not set",
        )];
    };
    let Some(RecordingLocation { bucket, prefix }) = RecordingLocation::parse(&setting) else {
        return vec![Check::fail(
            "s3",
            "empty bucket setting",
            "set RECORDING_STORAGE_AWS_BUCKET_NAME",
        )];
    };
    let Ok(aws) = source.section::<AwsSettings>() else {
        return vec![Check::fail(
            "s3",
            "invalid AWS_* settings",
            "check AWS_REGION and AWS_ENDPOINT_URL",
        )];
    };
    let mut checks = Vec::new();
    // Readable by the services (their own credentials: listing for the scan).
    let services = storage::s3_client(&storage::sdk_config(&aws).await);
    if scope.s3_listing {
        checks.push(listing(&services, &bucket, &prefix).await);
    }
    if scope.s3_privacy {
        checks.push(
            privacy(
                &services,
                &bucket,
                source.get("recording_retention_days").is_some(),
            )
            .await,
        );
    }
    if !scope.s3_whereby_key {
        return checks;
    }
    // Writable with the key Whereby uploads with: what recordings depend on.
    let whereby_keys = AwsSettings {
        aws_access_key_id: source.get("aws_whereby_access_key_id"),
        aws_secret_access_key: source
            .get("aws_whereby_access_key_secret")
            .map(secrecy::SecretString::from),
        ..aws
    };
    if whereby_keys.aws_access_key_id.is_none() || whereby_keys.aws_secret_access_key.is_none() {
        checks.push(Check::skip(
            "s3 (whereby's key)",
            "AWS_WHEREBY_ACCESS_KEY_* not set",
        ));
        return checks;
    }
    let as_whereby = storage::s3_client(&storage::sdk_config(&whereby_keys).await);
    let key = format!(
        "{prefix}whereby-ops-doctor/{}.txt",
        uuid::Uuid::new_v4().simple()
    );
    match storage::put_object(&as_whereby, &bucket, &key, b"whereby-ops doctor".to_vec(), "text/plain").await {
        Ok(()) => {
            let _ = storage::delete_object(&services, &bucket, &key).await;
            checks.push(Check::ok("s3 (whereby's key)", format!("Whereby's key can write to {bucket}")));
        }
        Err(e) => checks.push(Check::fail(
            "s3 (whereby's key)",
            e.to_string(),
            "Whereby's access key needs s3:PutObject on the bucket (and the bucket must exist in AWS_REGION)",
        )),
    }
    checks
}

async fn listing(services: &storage::aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Check {
    match storage::list_page(services, bucket, prefix, None).await {
        Ok((keys, _)) => Check::ok(
            "s3 (services)",
            format!(
                "bucket {bucket} is listable ({} object(s) on the first page)",
                keys.len()
            ),
        ),
        Err(e) => Check::fail(
            "s3 (services)",
            e.to_string(),
            "the worker needs s3:ListBucket, s3:GetObject and s3:DeleteObject on the bucket",
        ),
    }
}

/// Recordings are personal data: the bucket must not be public, must encrypt at
/// rest, and must expire what retention deletes (a lifecycle rule as the backstop).
async fn privacy(s3: &storage::aws_sdk_s3::Client, bucket: &str, retention_set: bool) -> Check {
    let p = match storage::bucket_protection(s3, bucket).await {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                "s3 (privacy)",
                e.to_string(),
                "the services need s3:GetBucketPublicAccessBlock, s3:GetEncryptionConfiguration, s3:GetLifecycleConfiguration and s3:GetBucketVersioning to check this",
            );
        }
    };
    let mut problems = Vec::new();
    let mut hints = Vec::new();
    if !p.public_access_blocked {
        problems.push("public access is not blocked");
        hints.push("turn on all four Block Public Access settings of the bucket");
    }
    if p.default_encryption.is_none() {
        problems.push("no default encryption");
        hints.push("set default encryption (SSE-S3 or SSE-KMS)");
    }
    if retention_set && p.expiring_lifecycle_rules == 0 {
        problems.push("RECORDING_RETENTION_DAYS is set but no lifecycle rule expires objects");
        hints.push("add a lifecycle rule expiring objects a little after RECORDING_RETENTION_DAYS, as a backstop to the retention job");
    }
    let versioning = &p.versioning;
    if problems.is_empty() {
        Check::ok(
            "s3 (privacy)",
            format!(
                "public access blocked, encrypted with {}, {} expiring lifecycle rule(s), versioning {versioning}",
                p.default_encryption.as_deref().unwrap_or("?"),
                p.expiring_lifecycle_rules
            ),
        )
    } else {
        Check::fail(
            "s3 (privacy)",
            format!("{} (versioning {versioning})", problems.join("; ")),
            format!(
                "{}; see docs/operations.md, \"Private recordings\"",
                hints.join("; ")
            ),
        )
    }
}

async fn sqs(source: &Source) -> Check {
    let Some(url) = source.get("aws_process_recording_queue_url") else {
        return Check::skip("sqs", "AWS_PROCESS_RECORDING_QUEUE_URL is not set");
    };
    let Ok(aws) = source.section::<AwsSettings>() else {
        return Check::fail(
            "sqs",
            "invalid AWS_* settings",
            "check AWS_REGION and AWS_ENDPOINT_URL",
        );
    };
    let sqs = storage::sqs_client(&storage::sdk_config(&aws).await);
    match storage::queue_depths(&sqs, &url).await {
        Ok(d) if d.dead_letter.is_none() => Check::fail(
            "sqs",
            format!("{} message(s) waiting; no redrive policy", d.waiting),
            "give the queue a dead-letter queue (RedrivePolicy), or failing messages loop forever",
        ),
        Ok(d) if d.dead_letter.unwrap_or(0) > 0 => Check::fail(
            "sqs",
            format!(
                "{} waiting, {} in the dead-letter queue",
                d.waiting,
                d.dead_letter.unwrap_or(0)
            ),
            "messages the worker could not handle: read them in the dead-letter queue, fix, redrive",
        ),
        Ok(d) => Check::ok(
            "sqs",
            format!("{} message(s) waiting, dead-letter queue empty", d.waiting),
        ),
        Err(e) => Check::fail(
            "sqs",
            e.to_string(),
            "check the queue URL and sqs:ReceiveMessage/DeleteMessage/GetQueueAttributes permissions",
        ),
    }
}

async fn webhook_health(url: &str) -> Check {
    match reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(res) if res.status().is_success() => {
            Check::ok("webhook endpoint", format!("{url} is healthy"))
        }
        Ok(res) => Check::fail(
            "webhook endpoint",
            format!("HTTP {}", res.status().as_u16()),
            "503: webhook-ingest cannot reach RabbitMQ; 404: check the ingress path /v1/whereby",
        ),
        Err(e) => Check::fail(
            "webhook endpoint",
            e.to_string(),
            "check DNS, TLS and the ingress",
        ),
    }
}
