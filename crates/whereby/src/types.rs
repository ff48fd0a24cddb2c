use chrono::{DateTime, SecondsFormat, Utc};
use domain::{RecordingTrigger, RecordingType, RoomMode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// `POST /meetings` request body. Field names and values follow the spec; `Debug`
/// never shows the S3 secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateMeeting {
    #[serde(serialize_with = "rfc3339")]
    pub end_date: DateTime<Utc>,
    pub is_locked: bool,
    pub room_mode: RoomMode,
    pub room_name_prefix: String,
    pub room_name_pattern: &'static str,
    pub fields: Vec<&'static str>,
    /// Absent for rooms that are not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
}

impl CreateMeeting {
    /// The request for a room: `roomNamePrefix` is the room name plus `-`, room
    /// names are UUID-patterned, and the host URL is asked for. `storage` is used
    /// for cloud recordings only.
    pub fn for_room(
        room_name_prefix: String,
        end_date: DateTime<Utc>,
        is_locked: bool,
        room_mode: RoomMode,
        recording_type: RecordingType,
        trigger: RecordingTrigger,
        storage: &RecordingDestination,
    ) -> Self {
        let recording = match recording_type {
            RecordingType::None => None,
            RecordingType::Local => Some(Recording {
                kind: RecordingType::Local,
                destination: None,
                start_trigger: trigger,
            }),
            RecordingType::Cloud => Some(Recording {
                kind: RecordingType::Cloud,
                destination: Some(storage.clone()),
                start_trigger: trigger,
            }),
        };
        Self {
            end_date,
            is_locked,
            room_mode,
            room_name_prefix,
            room_name_pattern: "uuid",
            fields: vec!["hostRoomUrl"],
            recording,
        }
    }
}

fn rfc3339<S: Serializer>(date: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&date.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `recording`: the spec requires all three keys; `destination` may be `null`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    #[serde(rename = "type")]
    pub kind: RecordingType,
    pub destination: Option<RecordingDestination>,
    pub start_trigger: RecordingTrigger,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingProvider {
    S3,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingFileFormat {
    Mp4,
    Mkv,
}

/// Our S3 bucket, and the access key Whereby's recorder uploads with.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingDestination {
    pub provider: RecordingProvider,
    pub bucket: String,
    pub access_key_id: String,
    #[serde(serialize_with = "expose")]
    pub access_key_secret: SecretString,
    pub file_format: RecordingFileFormat,
}

fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// The spec's `Meeting`. Unknown fields are ignored (Whereby adds fields within v1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meeting {
    pub meeting_id: String,
    #[serde(default)]
    pub room_name: Option<String>,
    pub room_url: String,
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: DateTime<Utc>,
    #[serde(default)]
    pub host_room_url: Option<String>,
    #[serde(default)]
    pub viewer_room_url: Option<String>,
}

impl Meeting {
    /// The room name with its leading `/`; derived from `roomUrl` when Whereby
    /// leaves `roomName` out (it is optional in the spec).
    pub fn room_name(&self) -> Option<String> {
        if let Some(name) = self.room_name.as_deref().filter(|n| n.len() > 1) {
            return Some(if name.starts_with('/') {
                name.to_owned()
            } else {
                format!("/{name}")
            });
        }
        let path = self.room_url.split('?').next()?;
        let last = path.rsplit('/').next().filter(|s| !s.is_empty())?;
        Some(format!("/{last}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meeting_parses_with_unknown_fields_and_optional_milliseconds() {
        let m: Meeting = serde_json::from_str(
            r#"{"meetingId":"61490154","roomName":"/standup-3012","roomUrl":"https://a.whereby.com/standup-3012",
                "startDate":"2029-12-31T09:00:00.000Z","endDate":"2030-01-01T10:00:00Z","somethingNew":1}"#,
        )
        .expect("parse");
        assert_eq!(m.meeting_id, "61490154");
        assert_eq!(m.room_name().as_deref(), Some("/standup-3012"));
    }

    #[test]
    fn the_s3_secret_is_sent_but_never_shown_in_debug_output() {
        let destination = RecordingDestination {
            provider: RecordingProvider::S3,
            bucket: "b".to_owned(),
            access_key_id: "id".to_owned(),
            access_key_secret: SecretString::from("s3-secret-value".to_owned()),
            file_format: RecordingFileFormat::Mp4,
        };
        let request = CreateMeeting::for_room(
            "r-".to_owned(),
            Utc::now(),
            false,
            RoomMode::Normal,
            RecordingType::Cloud,
            RecordingTrigger::Automatic,
            &destination,
        );
        assert!(!format!("{request:?}").contains("s3-secret-value"));
        let json = serde_json::to_value(&request).expect("serialise");
        assert_eq!(
            json["recording"]["destination"]["accessKeySecret"],
            "s3-secret-value"
        );
    }

    #[test]
    fn room_name_falls_back_to_the_url() {
        let m: Meeting = serde_json::from_str(
            r#"{"meetingId":"1","roomUrl":"https://a.whereby.com/x-1?roomKey=k","endDate":"2030-01-01T10:00:00Z"}"#,
        )
        .expect("parse");
        assert_eq!(m.room_name().as_deref(), Some("/x-1"));
    }
}
