//! S3 and SQS through the official AWS SDK for Rust (not rusoto: unmaintained, with
//! advisories; see docs/ARCHITECTURE.md), and the S3 event notifications that
//! announce recordings.

pub mod notification;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig, timeout::TimeoutConfig};
use aws_sdk_s3::{config::Credentials, presigning::PresigningConfig, primitives::ByteStream};
use secrecy::ExposeSecret;
use settings::AwsSettings;

pub use aws_sdk_s3;
pub use aws_sdk_sqs;

/// Loads the SDK configuration: region, endpoint (an emulator locally) and
/// credentials (static when both keys are set, else the standard chain). Every
/// call has connect and operation timeouts.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.aws_region.clone()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(url) = &settings.aws_endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let (Some(id), Some(secret)) = (&settings.aws_access_key_id, &settings.aws_secret_access_key)
    {
        loader = loader.credentials_provider(Credentials::new(
            id,
            secret.expose_secret(),
            None,
            None,
            "settings",
        ));
    }
    loader.load().await
}

/// An S3 client; path-style addressing when an endpoint is configured (emulators
/// do not resolve `bucket.host` names).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let path_style = config.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build(),
    )
}

pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such object")]
    NotFound,
    #[error("S3/SQS call failed: {0}")]
    Call(String),
}

fn call_error<E: std::fmt::Debug>(e: E) -> StorageError {
    // The SDK's Display is terse ("service error"); Debug names the cause. Neither
    // carries credentials.
    let text = format!("{e:?}");
    StorageError::Call(text.chars().take(400).collect())
}

/// What S3 says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: i64,
    pub content_type: Option<String>,
    pub etag: Option<String>,
}

pub async fn head_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<ObjectInfo, StorageError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(ObjectInfo {
            size: out.content_length().unwrap_or(0),
            content_type: out.content_type().map(str::to_owned),
            etag: out.e_tag().map(|e| e.trim_matches('"').to_owned()),
        }),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
            Err(StorageError::NotFound)
        }
        Err(e) => Err(call_error(e)),
    }
}

/// One page of keys under `prefix`; pass the returned token to get the next page.
pub async fn list_page(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    token: Option<String>,
) -> Result<(Vec<String>, Option<String>), StorageError> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .set_continuation_token(token)
        .max_keys(1000)
        .send()
        .await
        .map_err(call_error)?;
    let keys = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    let next = if out.is_truncated().unwrap_or(false) {
        out.next_continuation_token().map(str::to_owned)
    } else {
        None
    };
    Ok((keys, next))
}

pub async fn delete_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<(), StorageError> {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map(drop)
        .map_err(call_error)
}

pub async fn put_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<(), StorageError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .map(drop)
        .map_err(call_error)
}

/// How a bucket protects what is in it: recordings are personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketProtection {
    /// All four public-access blocks on (ACLs and policies, blocked and ignored).
    pub public_access_blocked: bool,
    /// Default encryption: `AES256` (SSE-S3), `aws:kms`, `aws:kms:dsse`; `None`: off.
    pub default_encryption: Option<String>,
    /// Enabled lifecycle rules that expire objects.
    pub expiring_lifecycle_rules: usize,
    /// `Enabled`, `Suspended`, `never enabled`, or `unknown` when the answer could
    /// not be read (informational: the S3/SQS emulator answers a never-versioned
    /// bucket with a document the SDK does not parse).
    pub versioning: String,
}

/// The error code of an S3 service error, if it is one (`NoSuchLifecycleConfiguration`).
fn service_code<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> Option<&str>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code())
}

/// Reads the bucket's public-access block, default encryption, lifecycle and
/// versioning. "Not configured" answers are facts (`false`, `None`, `0`), not errors.
pub async fn bucket_protection(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<BucketProtection, StorageError> {
    let public_access_blocked = match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if service_code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(e) => return Err(call_error(e)),
    };
    let default_encryption = match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| d.sse_algorithm().as_str().to_owned()),
        Err(e) if service_code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
            None
        }
        Err(e) => return Err(call_error(e)),
    };
    let expiring_lifecycle_rules = match s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out
            .rules()
            .iter()
            .filter(|r| r.status().as_str() == "Enabled" && r.expiration().is_some())
            .count(),
        Err(e) if service_code(&e) == Some("NoSuchLifecycleConfiguration") => 0,
        Err(e) => return Err(call_error(e)),
    };
    let versioning = match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => out
            .status()
            .map_or_else(|| "never enabled".to_owned(), |s| s.as_str().to_owned()),
        Err(_) => "unknown".to_owned(),
    };
    Ok(BucketProtection {
        public_access_blocked,
        default_encryption,
        expiring_lifecycle_rules,
        versioning,
    })
}

/// A time-limited GET URL for an object.
pub async fn presigned_get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    valid_for: Duration,
) -> Result<String, StorageError> {
    let config = PresigningConfig::expires_in(valid_for).map_err(call_error)?;
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .presigned(config)
        .await
        .map(|r| r.uri().to_owned())
        .map_err(call_error)
}

/// A received SQS message.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub body: String,
    pub receipt_handle: String,
    pub message_id: String,
    pub receive_count: u32,
    /// When SQS received it (`SentTimestamp`), for the age metric.
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Long-polls for up to 10 messages, waiting at most `wait` (SQS caps it at 20 s).
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait: Duration,
    visibility: Duration,
) -> Result<Vec<QueueMessage>, StorageError> {
    let wait_secs = i32::try_from(wait.as_secs().min(20)).unwrap_or(20);
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(300))
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp,
        )
        .send()
        .await
        .map_err(call_error)?;
    Ok(out
        .messages()
        .iter()
        .map(|m| QueueMessage {
            body: m.body().unwrap_or_default().to_owned(),
            receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
            message_id: m.message_id().unwrap_or_default().to_owned(),
            receive_count: m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            sent_at: m
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::SentTimestamp))
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(chrono::DateTime::from_timestamp_millis),
        })
        .collect())
}

pub async fn delete_message(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handle: &str,
) -> Result<(), StorageError> {
    sqs.delete_message()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .send()
        .await
        .map(drop)
        .map_err(call_error)
}

pub async fn extend_visibility(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handle: &str,
    visibility: Duration,
) -> Result<(), StorageError> {
    sqs.change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(300))
        .send()
        .await
        .map(drop)
        .map_err(call_error)
}

/// A queue's backlog and its dead-letter queue's (`None` without a redrive policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepths {
    pub waiting: usize,
    pub dead_letter: Option<usize>,
}

pub async fn queue_depths(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<QueueDepths, StorageError> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::RedrivePolicy)
        .send()
        .await
        .map_err(call_error)?;
    let get = |a: &aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput, n: A| {
        a.attributes().and_then(|m| m.get(&n).cloned())
    };
    let waiting = get(&attrs, A::ApproximateNumberOfMessages)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let dead_arn = get(&attrs, A::RedrivePolicy)
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned));
    let Some(arn) = dead_arn else {
        return Ok(QueueDepths {
            waiting,
            dead_letter: None,
        });
    };
    let name = arn.rsplit(':').next().unwrap_or_default();
    let dlq_url = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(call_error)?;
    let dlq = sqs
        .get_queue_attributes()
        .queue_url(dlq_url.queue_url().unwrap_or_default())
        .attribute_names(A::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(call_error)?;
    let dead = get(&dlq, A::ApproximateNumberOfMessages)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(QueueDepths {
        waiting,
        dead_letter: Some(dead),
    })
}
