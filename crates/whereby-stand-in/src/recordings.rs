//! What Whereby's cloud recorder does when a recorded session ends: upload the file
//! to the bucket the meeting request named, with the credentials it carried, as
//! `<room name without the leading slash>-<UTC start, YYYY-MM-DDTHH:MM:SSZ>.<format>`
//! (under the bucket setting's sub-folder).

use chrono::{DateTime, Utc};
use domain::recording::RecordingLocation;
use secrecy::SecretString;
use serde_json::Value;
use settings::AwsSettings;

/// One upload to make.
#[derive(Debug, Clone)]
pub struct RecordingJob {
    pub bucket_setting: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub room_name: String,
    pub started: DateTime<Utc>,
    pub format: String,
}

/// The upload a meeting's request asks for, if it asked for cloud recording to S3.
pub fn job_for(
    request: &Value,
    room_name: &str,
    started: Option<DateTime<Utc>>,
) -> Option<RecordingJob> {
    let recording = request.get("recording")?;
    if recording.get("type")?.as_str()? != "cloud" {
        return None;
    }
    let destination = recording.get("destination")?;
    let field = |name: &str| {
        destination
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Some(RecordingJob {
        bucket_setting: field("bucket")?,
        access_key_id: field("accessKeyId")?,
        access_key_secret: field("accessKeySecret")?,
        room_name: room_name.to_owned(),
        started: started.unwrap_or_else(Utc::now),
        format: field("fileFormat").unwrap_or_else(|| "mp4".to_owned()),
    })
}

/// Why the stand-in could not upload a recording.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the meeting's recording bucket setting is empty")]
    NoBucket,
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

/// Uploads a small stand-in file; returns (object key, file name).
pub async fn upload(endpoint: &str, job: &RecordingJob) -> Result<(String, String), UploadError> {
    let location = RecordingLocation::parse(&job.bucket_setting).ok_or(UploadError::NoBucket)?;
    let file_name = format!(
        "{}-{}.{}",
        job.room_name.trim_start_matches('/'),
        job.started.format("%Y-%m-%dT%H:%M:%SZ"),
        job.format
    );
    let key = location.key_for(&file_name);
    let config = storage::sdk_config(&AwsSettings {
        aws_endpoint_url: Some(endpoint.to_owned()),
        aws_region: "us-east-1".to_owned(),
        aws_access_key_id: Some(job.access_key_id.clone()),
        aws_secret_access_key: Some(SecretString::from(job.access_key_secret.clone())),
    })
    .await;
    let s3 = storage::s3_client(&config);
    let body = format!(
        "stand-in recording of {} started {}\n",
        job.room_name, job.started
    )
    .into_bytes();
    storage::put_object(
        &s3,
        &location.bucket,
        &key,
        body,
        &format!("video/{}", job.format),
    )
    .await?;
    tracing::info!(bucket = %location.bucket, %key, "uploaded a stand-in recording");
    Ok((key, file_name))
}
