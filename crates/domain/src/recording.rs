//! Recordings as Whereby's cloud recorder writes them into our bucket:
//! `<room name without the leading slash>-<UTC start, YYYY-MM-DDTHH:MM:SSZ>.<mp4|mkv>`,
//! under the sub-folder of the bucket setting when it has one.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where recordings land: the bucket, and the key prefix when the bucket setting
/// names a sub-folder (`my-bucket/recordings` → bucket `my-bucket`, prefix
/// `recordings/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingLocation {
    pub bucket: String,
    pub prefix: String,
}

impl RecordingLocation {
    pub fn parse(setting: &str) -> Option<Self> {
        let setting = setting.trim().trim_matches('/');
        let (bucket, folder) = setting.split_once('/').unwrap_or((setting, ""));
        if bucket.is_empty() {
            return None;
        }
        let folder = folder.trim_matches('/');
        Some(Self {
            bucket: bucket.to_owned(),
            prefix: if folder.is_empty() {
                String::new()
            } else {
                format!("{folder}/")
            },
        })
    }

    /// The object key of a file name Whereby reports (`recording.finished`).
    pub fn key_for(&self, file_name: &str) -> String {
        format!("{}{}", self.prefix, file_name.trim_start_matches('/'))
    }
}

/// A recording's file name, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingName {
    /// Whereby's room name, with its leading `/`, as meetings store it.
    pub room_name: String,
    pub recorded_at: DateTime<Utc>,
    pub format: String,
}

/// Why a key is not a recording we can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// Not a video file at all: ignored.
    NotARecording,
    /// A video file whose name does not follow Whereby's pattern: kept as unmatched.
    Unparseable(String),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotARecording => f.write_str("not a recording (neither .mp4 nor .mkv)"),
            Self::Unparseable(why) => f.write_str(why),
        }
    }
}

/// Whether a key is a recording file at all (by extension).
pub fn is_recording_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.ends_with(".mp4") || lower.ends_with(".mkv")
}

/// Parses an object key (any folder prefix is ignored).
pub fn parse_recording_key(key: &str) -> Result<RecordingName, NameProblem> {
    if !is_recording_key(key) {
        return Err(NameProblem::NotARecording);
    }
    let file = key.rsplit('/').next().unwrap_or(key);
    let (stem, format) = file.rsplit_once('.').unwrap_or((file, ""));
    const STAMP: usize = "2030-01-01T09:05:30Z".len();
    let bad = |why: &str| Err(NameProblem::Unparseable(why.to_owned()));
    // Any object name is legal in S3: split only where `get` says is a character
    // boundary, never by indexing (a multi-byte character there would panic).
    let split = stem.len().saturating_sub(STAMP);
    let (Some(head), Some(stamp)) = (stem.get(..split), stem.get(split..)) else {
        return bad("the file name does not end with a UTC start time YYYY-MM-DDTHH:MM:SSZ");
    };
    if head.len() < 2 {
        return bad("no room name and start time in the file name");
    }
    let Some(room) = head.strip_suffix('-') else {
        return bad("no `-` between the room name and the start time");
    };
    let Ok(at) = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%SZ") else {
        return bad("the file name does not end with a UTC start time YYYY-MM-DDTHH:MM:SSZ");
    };
    if room.is_empty() {
        return bad("the room name is empty");
    }
    Ok(RecordingName {
        room_name: format!("/{room}"),
        recorded_at: at.and_utc(),
        format: format.to_ascii_lowercase(),
    })
}

/// Decodes an S3 event notification key: form-URL-encoded, `+` for a space.
/// Invalid escapes are kept as they are (the key must not be lost).
pub fn decode_event_key(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A recording's life: `unmatched` (no meeting found, kept), `uploaded` (in the
/// bucket, matched), `queued` (handed to the pipeline, confirmed), then what the
/// pipeline reports (`processing`, `done`, `failed`), and `deleted` by retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    Unmatched,
    Uploaded,
    Queued,
    Processing,
    Done,
    Failed,
    Deleted,
    /// Deleted from the bucket by a personal-data erasure.
    Erased,
}

impl RecordingStatus {
    pub const ALL: [Self; 8] = [
        Self::Unmatched,
        Self::Uploaded,
        Self::Queued,
        Self::Processing,
        Self::Done,
        Self::Failed,
        Self::Deleted,
        Self::Erased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unmatched => "unmatched",
            Self::Uploaded => "uploaded",
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
            Self::Erased => "erased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the pipeline may move a recording from `self` to `to`. Repeating the
    /// current status is allowed (reports may be retried); going back is not.
    pub fn pipeline_may_move_to(self, to: Self) -> bool {
        use RecordingStatus::{Done, Failed, Processing, Queued};
        match (self, to) {
            (from, to) if from == to => matches!(to, Processing | Done | Failed),
            (Queued, Processing | Done | Failed) => true,
            (Processing, Done | Failed) => true,
            // A failed recording may be retried by the pipeline.
            (Failed, Processing | Done) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name of random Unicode around (and sometimes inside) Whereby's pattern.
    fn random_name(rng: &mut fastrand::Rng) -> String {
        let alphabets: [&[char]; 4] = [
            &['a', '-', '/', '.', 'Z', '0', ':', 'T'],
            &['é', 'ß', 'ø', 'ü'],         // two bytes
            &['€', '中', '—', '\u{2028}'], // three bytes
            &['😀', '𝄞', '\u{10FFFF}'],    // four bytes
        ];
        let mut name = String::new();
        for _ in 0..rng.usize(0..40) {
            let alphabet = alphabets[rng.usize(0..alphabets.len())];
            name.push(if rng.u8(..) < 16 {
                rng.char(..)
            } else {
                alphabet[rng.usize(0..alphabet.len())]
            });
        }
        match rng.u8(0..4) {
            0 => name.push_str("-2024-03-01T10:00:00Z"),
            1 => name.push_str("2024-03-01T10:00:00Z"),
            2 => name.push_str("-2024-03-01T10:00:0é"),
            _ => {}
        }
        name.push_str([".mp4", ".MKV", ".mp4.part", ""][rng.usize(0..4)]);
        name
    }

    #[test]
    fn parsing_never_panics_on_any_unicode_name() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for _ in 0..200_000 {
            let name = random_name(&mut rng);
            for key in [name.clone(), format!("folder/{name}")] {
                if let Ok(parsed) = parse_recording_key(&key) {
                    // What parses is a room name and the stamp it was given.
                    assert!(parsed.room_name.starts_with('/'), "{key:?}");
                    assert!(!parsed.room_name[1..].is_empty(), "{key:?}");
                }
            }
        }
    }

    #[test]
    fn non_ascii_names_are_parsed_or_refused_without_panicking() {
        // The name that used to panic: a two-byte character one byte before the
        // split point.
        assert!(matches!(
            parse_recording_key("café-recording-final-v2.mp4"),
            Err(NameProblem::Unparseable(_))
        ));
        for key in [
            "é-2024-03-01T10:00:00Z.mp4",
            "réunion-2024-03-01T10:00:00Z.mp4",
        ] {
            let parsed = parse_recording_key(key).expect(key);
            assert!(
                parsed
                    .room_name
                    .ends_with(key.split('-').next().unwrap_or_default())
            );
        }
        let stamp_with_accent = "room-2024-03-01T10:00:0é.mp4";
        assert!(parse_recording_key(stamp_with_accent).is_err());
        for n in 0..30 {
            let key = format!("{}.mp4", "é".repeat(n));
            assert!(parse_recording_key(&key).is_err(), "{key}");
        }
    }

    #[test]
    fn whereby_names_parse() {
        let n = parse_recording_key(
            "standup-3012fcc7-cfd1-4d56-863d-4cda96a2b51a-2030-01-01T09:05:30Z.mp4",
        )
        .expect("parse");
        assert_eq!(n.room_name, "/standup-3012fcc7-cfd1-4d56-863d-4cda96a2b51a");
        assert_eq!(n.recorded_at.to_rfc3339(), "2030-01-01T09:05:30+00:00");
        assert_eq!(n.format, "mp4");
        let n =
            parse_recording_key("recordings/2026/speaker1-session2-0b1f-2023-10-31T13:09:35Z.MKV")
                .expect("sub-folder");
        assert_eq!(n.room_name, "/speaker1-session2-0b1f");
        assert_eq!(n.format, "mkv");
    }

    #[test]
    fn other_names_are_explained() {
        assert_eq!(
            parse_recording_key("notes.txt"),
            Err(NameProblem::NotARecording)
        );
        for bad in [
            "video.mp4",
            "room2030-01-01T09:05:30Z.mp4",
            "room-2030-13-01T09:05:30Z.mp4",
            "-2030-01-01T09:05:30Z.mp4",
            "room-2030-01-01T09:05:30.000Z.mp4",
        ] {
            assert!(
                matches!(parse_recording_key(bad), Err(NameProblem::Unparseable(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn event_keys_are_form_decoded() {
        assert_eq!(
            decode_event_key("room-2030-01-01T09%3A05%3A30Z.mp4"),
            "room-2030-01-01T09:05:30Z.mp4"
        );
        assert_eq!(decode_event_key("my+folder/a%2Bb.mp4"), "my folder/a+b.mp4");
        assert_eq!(decode_event_key("100%"), "100%");
        assert_eq!(decode_event_key("bad%zzescape"), "bad%zzescape");
        assert_eq!(decode_event_key("caf%C3%A9.mp4"), "café.mp4");
    }

    #[test]
    fn bucket_settings_split_into_bucket_and_prefix() {
        assert_eq!(
            RecordingLocation::parse("b"),
            Some(RecordingLocation {
                bucket: "b".into(),
                prefix: String::new()
            })
        );
        let l = RecordingLocation::parse("b/rec/2026/").expect("parse");
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("b", "rec/2026/"));
        assert_eq!(l.key_for("x.mp4"), "rec/2026/x.mp4");
        assert_eq!(RecordingLocation::parse(""), None);
    }

    #[test]
    fn the_pipeline_moves_statuses_forward_only() {
        use RecordingStatus::*;
        assert!(Queued.pipeline_may_move_to(Processing));
        assert!(Processing.pipeline_may_move_to(Done));
        assert!(Done.pipeline_may_move_to(Done));
        assert!(!Done.pipeline_may_move_to(Processing));
        assert!(!Uploaded.pipeline_may_move_to(Done));
        assert!(!Deleted.pipeline_may_move_to(Done));
        assert!(!Queued.pipeline_may_move_to(Queued));
    }
}
