//! A bucket, an SQS queue with a dead-letter queue (redrive after 2 receives) and
//! the bucket's notification to the queue, all of its own per test, on the S3/SQS
//! emulator at `TEST_AWS_ENDPOINT_URL` (default `http://127.0.0.1:5000`, moto).

use settings::AwsSettings;
use storage::{
    aws_sdk_s3::{
        self,
        types::{
            BucketLifecycleConfiguration, Event, ExpirationStatus, LifecycleExpiration,
            LifecycleRule, LifecycleRuleFilter, NotificationConfiguration,
            PublicAccessBlockConfiguration, QueueConfiguration, ServerSideEncryption,
            ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
            ServerSideEncryptionRule,
        },
    },
    aws_sdk_sqs::{self, types::QueueAttributeName},
};

pub fn endpoint() -> String {
    std::env::var("TEST_AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".to_owned())
}

/// The `AWS_*` settings for the emulator, read from [`crate::TestEnv::new`].
pub fn aws_settings() -> AwsSettings {
    crate::TestEnv::new()
        .section()
        .expect("the emulator's AWS settings")
}

pub struct TestAws {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub bucket: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub settings: AwsSettings,
}

impl TestAws {
    /// A bucket whose "object created" notifications go to a fresh queue.
    pub async fn new() -> Self {
        let settings = aws_settings();
        let config = storage::sdk_config(&settings).await;
        let s3 = storage::s3_client(&config);
        let sqs = storage::sqs_client(&config);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let bucket = format!("rec-{}", &id[..20]);
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket (is the S3/SQS emulator running?)");
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("rec-dlq-{id}"))
            .send()
            .await
            .expect("dlq")
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let dlq_arn = Self::arn(&sqs, &dlq_url).await;
        let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#);
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("rec-{id}"))
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .expect("queue")
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let queue_arn = Self::arn(&sqs, &queue_url).await;
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(
                        QueueConfiguration::builder()
                            .queue_arn(queue_arn)
                            .events(Event::S3ObjectCreated)
                            .build()
                            .expect("queue configuration"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("bucket notification");
        protect_bucket(&s3, &bucket).await;
        Self {
            s3,
            sqs,
            bucket,
            queue_url,
            dlq_url,
            settings,
        }
    }

    /// Another bucket of its own, created bare (no public-access block, no
    /// encryption, no lifecycle): what `whereby-ops doctor` must complain about.
    pub async fn bare_bucket(&self) -> String {
        let bucket = format!("bare-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
        self.s3
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket");
        bucket
    }

    async fn arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("queue arn")
    }

    /// Uploads an object (S3 then notifies the queue).
    pub async fn put(&self, key: &str, body: &[u8]) {
        storage::put_object(&self.s3, &self.bucket, key, body.to_vec(), "video/mp4")
            .await
            .expect("put object");
    }

    /// Sends a raw message to the queue, as S3 (or anyone) would.
    pub async fn send_raw(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send message");
    }

    /// Messages in a queue, visible and in flight.
    pub async fn depth(&self, url: &str) -> usize {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        let get = |n: QueueAttributeName| {
            attrs
                .attributes()
                .and_then(|a| a.get(&n))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }

    pub async fn exists(&self, key: &str) -> bool {
        storage::head_object(&self.s3, &self.bucket, key)
            .await
            .is_ok()
    }
}

/// What a recordings bucket should have (docs/operations.md, "Private
/// recordings"): public access blocked, default encryption, an expiring lifecycle
/// rule.
pub async fn protect_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .expect("public access block");
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::Aes256)
                                .build()
                                .expect("encryption default"),
                        )
                        .build(),
                )
                .build()
                .expect("encryption configuration"),
        )
        .send()
        .await
        .expect("bucket encryption");
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("expire-recordings")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("").build())
                        .expiration(LifecycleExpiration::builder().days(400).build())
                        .build()
                        .expect("lifecycle rule"),
                )
                .build()
                .expect("lifecycle configuration"),
        )
        .send()
        .await
        .expect("bucket lifecycle");
}
