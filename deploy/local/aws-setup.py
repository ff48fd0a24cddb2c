"""Creates what the local run needs on the S3/SQS emulator, idempotently: the
recordings bucket (private: public access blocked, encrypted by default, an
expiring lifecycle rule), the queue S3 notifies (with a dead-letter queue after 5
receives), and the bucket's "object created" notification. Prints the queue URL.
What a production account gets from its infrastructure code (docs/operations.md)."""
import json
import os
import sys

import boto3

endpoint = os.environ["AWS_ENDPOINT_URL"]
bucket = sys.argv[1]
queue = sys.argv[2]
kwargs = dict(endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
s3 = boto3.client("s3", **kwargs)
sqs = boto3.client("sqs", **kwargs)

if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=bucket)
s3.put_public_access_block(
    Bucket=bucket,
    PublicAccessBlockConfiguration={
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    },
)
s3.put_bucket_encryption(
    Bucket=bucket,
    ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
)
s3.put_bucket_lifecycle_configuration(
    Bucket=bucket,
    LifecycleConfiguration={
        "Rules": [{"ID": "expire-recordings", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 400}}]
    },
)
dlq_url = sqs.create_queue(QueueName=queue + "-dead")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue_url = sqs.create_queue(
    QueueName=queue,
    Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
)["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
s3.put_bucket_notification_configuration(
    Bucket=bucket,
    NotificationConfiguration={"QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]},
)
print(queue_url)
