//! S3 event notifications as they arrive on SQS: the plain form `{"Records": [...]}`,
//! the SNS-wrapped form (`{"Type": "Notification", "Message": "<json>"}`), and the
//! `s3:TestEvent` S3 sends when a notification is configured.

use domain::recording::decode_event_key;
use serde::Deserialize;

/// What one SQS message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// S3's test message: delete it, nothing else.
    Test,
    /// Objects created (other event types are left out), plus how many records
    /// could not be read.
    Created {
        objects: Vec<CreatedObject>,
        unreadable: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    pub bucket: String,
    /// Decoded (`%3A` → `:`, `+` → space).
    pub key: String,
    pub event_name: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Records")]
    records: Option<Vec<serde_json::Value>>,
    #[serde(rename = "Event")]
    event: Option<String>,
    #[serde(rename = "Type")]
    sns_type: Option<String>,
    #[serde(rename = "Message")]
    sns_message: Option<String>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName")]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
}

/// Why an SQS message body is unreadable as a whole.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableNotification {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("an SNS notification without a Message")]
    SnsWithoutMessage,
    #[error("neither Records nor an S3 test event")]
    NoRecords,
}

/// Parses an SQS message body. `Err` means the body itself is unreadable.
pub fn parse(body: &str) -> Result<Notification, UnreadableNotification> {
    let envelope: Envelope = serde_json::from_str(body)?;
    if envelope.sns_type.as_deref() == Some("Notification") {
        let inner = envelope
            .sns_message
            .ok_or(UnreadableNotification::SnsWithoutMessage)?;
        return parse(&inner);
    }
    if envelope.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    let records = envelope.records.ok_or(UnreadableNotification::NoRecords)?;
    let mut objects = Vec::new();
    let mut unreadable = 0;
    for value in records {
        match serde_json::from_value::<Record>(value) {
            Ok(r) if r.event_name.starts_with("ObjectCreated:") => objects.push(CreatedObject {
                bucket: r.s3.bucket.name,
                key: decode_event_key(&r.s3.object.key),
                event_name: r.event_name,
            }),
            Ok(_) => {}
            Err(_) => unreadable += 1,
        }
    }
    Ok(Notification::Created {
        objects,
        unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: &str, bucket: &str, key: &str) -> String {
        format!(
            r#"{{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2030-01-01T09:05:40.000Z","eventName":"{event}","s3":{{"s3SchemaVersion":"1.0","bucket":{{"name":"{bucket}","arn":"arn:aws:s3:::{bucket}"}},"object":{{"key":"{key}","size":1024,"eTag":"abc"}}}}}}"#
        )
    }

    #[test]
    fn plain_notifications_with_encoded_keys() {
        let body = format!(
            r#"{{"Records":[{}]}}"#,
            record(
                "ObjectCreated:Put",
                "b",
                "rec%2F2026/room-2030-01-01T09%3A05%3A30Z.mp4"
            )
        );
        assert_eq!(
            parse(&body).ok(),
            Some(Notification::Created {
                objects: vec![CreatedObject {
                    bucket: "b".into(),
                    key: "rec/2026/room-2030-01-01T09:05:30Z.mp4".into(),
                    event_name: "ObjectCreated:Put".into()
                }],
                unreadable: 0
            })
        );
    }

    #[test]
    fn sns_wrapped_notifications() {
        let inner = format!(
            r#"{{"Records":[{}]}}"#,
            record("ObjectCreated:CompleteMultipartUpload", "b", "a+b%2Bc.mp4")
        );
        let body = serde_json::json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn", "Message": inner}).to_string();
        let Ok(Notification::Created { objects, .. }) = parse(&body) else {
            panic!("parse")
        };
        assert_eq!(objects[0].key, "a b+c.mp4");
    }

    #[test]
    fn test_events_and_other_event_types() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2030-01-01T00:00:00.000Z","Bucket":"b","RequestId":"r","HostId":"h"}"#;
        assert_eq!(parse(test).ok(), Some(Notification::Test));
        let body = format!(
            r#"{{"Records":[{},{},{},{{"eventName":"ObjectCreated:Put"}}]}}"#,
            record("ObjectRemoved:Delete", "b", "x.mp4"),
            record("ObjectCreated:Copy", "b", "y.mp4"),
            record("ObjectCreated:Post", "b", "z.mp4"),
        );
        let Ok(Notification::Created {
            objects,
            unreadable,
        }) = parse(&body)
        else {
            panic!("parse")
        };
        assert_eq!(
            objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            ["y.mp4", "z.mp4"]
        );
        assert_eq!(unreadable, 1);
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"Hello":1}"#).is_err());
    }
}
