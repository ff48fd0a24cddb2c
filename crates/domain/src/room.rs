use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Longest room name: with the `-` separator it fills Whereby's 39-character
/// `roomNamePrefix`.
pub const ROOM_NAME_MAX_LEN: usize = 38;

/// [`RoomName::parse`]'s rule as an ECMA-262 regular expression, for API documents
/// (the length bounds are separate). The lookaheads refuse the two UUID forms a
/// lowercase name could take, so that `/v1/rooms/{room}` can take a name or an id.
pub const ROOM_NAME_PATTERN: &str = "^(?![0-9a-f]{32}$)(?![0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$)[a-z0-9]+(-[a-z0-9]+)*$";

/// A room's unique name: 1 to 38 lowercase letters and digits, with single hyphens
/// between them, and never a UUID (ids and names share a path segment). It appears
/// in URLs and becomes the Whereby room name prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for RoomName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(ROOM_NAME_MAX_LEN))
            .pattern(Some(ROOM_NAME_PATTERN))
            .description(Some(
                "1-38 lowercase letters a-z and digits, single hyphens between them; never a UUID. Unique.",
            ))
            .examples(["team-standup"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for RoomName {}

impl RoomName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let err = |msg: &str| ValidationError::new("name", msg);
        if raw.is_empty() {
            return Err(err("must not be empty"));
        }
        if raw.chars().count() > ROOM_NAME_MAX_LEN {
            return Err(err("must be at most 38 characters"));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(err(
                "may contain only lowercase letters a-z, digits and hyphens",
            ));
        }
        if raw.starts_with('-') || raw.ends_with('-') || raw.contains("--") {
            return Err(err(
                "hyphens must stand between letters or digits (no leading, trailing or double hyphen)",
            ));
        }
        if uuid::Uuid::try_parse(raw).is_ok() {
            return Err(err(
                "must not be a UUID: rooms are addressed by id or by name in the same place",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `roomNamePrefix` sent to Whereby. Whereby adds no separator of its own.
    pub fn whereby_prefix(&self) -> String {
        format!("{}-", self.0)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The user (or calling service) that owns a room: the bearer token's `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerId(String);

impl OwnerId {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.trim().is_empty() || raw.len() > Self::MAX_LEN {
            return Err(ValidationError::new(
                "sub",
                "must be a non-empty string of at most 255 bytes",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Declares a closed string enum with its wire name, used identically in JSON,
/// in the database (CHECK constraints list the same names) and towards Whereby.
/// The wire name is a `tt`: utoipa's derive does not see a `serde(rename)` given
/// a `literal` fragment, and documented `Whereby` for `whereby`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident => $wire:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(ValidationError::new(
                        $field,
                        format!("must be one of: {}", [$($wire),+].join(", ")),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// The video platform a room's meetings run on. Only Whereby today; the type is
    /// open so that more platforms can be added.
    Platform, "platform" { Whereby => "whereby" }
);

wire_enum!(
    /// Where a meeting is recorded: not at all, in the browser, or by Whereby's cloud
    /// recorder into our S3 bucket.
    RecordingType, "recording_type" { None => "none", Local => "local", Cloud => "cloud" }
);

wire_enum!(
    /// When a cloud recording starts (Whereby's `startTrigger`).
    RecordingTrigger, "recording_trigger" {
        None => "none",
        Prompt => "prompt",
        Automatic => "automatic",
        Automatic2ndParticipant => "automatic-2nd-participant",
    }
);

wire_enum!(
    /// Whereby's room mode: `normal` (up to 4 people, peer to peer) or `group` (SFU).
    RoomMode, "room_mode" { Normal => "normal", Group => "group" }
);

/// The settings a room carries and a meeting copies when it is created. A meeting
/// can be reused only while its copy still equals the room's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomSettings {
    pub platform: Platform,
    pub recording_type: RecordingType,
    pub recording_trigger: RecordingTrigger,
    pub is_locked: bool,
    pub room_mode: RoomMode,
}

impl Default for RoomSettings {
    /// The defaults of the Whereby guide: cloud recording that starts with the
    /// second participant, unlocked, normal mode.
    fn default() -> Self {
        Self {
            platform: Platform::Whereby,
            recording_type: RecordingType::Cloud,
            recording_trigger: RecordingTrigger::Automatic2ndParticipant,
            is_locked: false,
            room_mode: RoomMode::Normal,
        }
    }
}

/// A page of a list, 1-based, with a bounded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub size: u32,
}

impl PageRequest {
    pub const DEFAULT_SIZE: u32 = 50;
    pub const MAX_SIZE: u32 = 100;

    pub fn parse(page: Option<i64>, size: Option<i64>) -> Result<Self, ValidationError> {
        let page = page.unwrap_or(1);
        let size = size.unwrap_or(i64::from(Self::DEFAULT_SIZE));
        if !(1..=i64::from(u32::MAX)).contains(&page) {
            return Err(ValidationError::new("page", "must be 1 or more"));
        }
        if !(1..=i64::from(Self::MAX_SIZE)).contains(&size) {
            return Err(ValidationError::new("size", "must be between 1 and 100"));
        }
        // Both ranges were checked above, so the conversions cannot fail.
        Ok(Self {
            page: u32::try_from(page).unwrap_or(1),
            size: u32::try_from(size).unwrap_or(Self::DEFAULT_SIZE),
        })
    }

    pub fn offset(self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.size)
    }

    pub fn pages(self, total: i64) -> i64 {
        (total + i64::from(self.size) - 1) / i64::from(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_follow_the_rules() {
        for ok in ["a", "standup", "team-42", "a-b-c", "0", &"x".repeat(38)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "Upper",
            "with space",
            "under_score",
            "é",
            "a/b",
            &"x".repeat(39),
            "123e4567-e89b-12d3-a456-426614174000",
            "123e4567e89b12d3a456426614174000",
        ] {
            let err = RoomName::parse(bad).expect_err(bad);
            assert_eq!(err.field, "name");
        }
        // Near misses of a UUID are names.
        for ok in [
            "123e4567-e89b-12d3-a456-42661417400",
            "123e4567-e89b-12d3-a456-4266141740001",
            "123e4567e89b-12d3-a456-426614174000",
            "123e4567e89b12d3a45642661417400g",
        ] {
            assert!(RoomName::parse(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn whereby_prefix_fits_whereby_limit() {
        let name = RoomName::parse(&"x".repeat(ROOM_NAME_MAX_LEN)).expect("valid");
        assert_eq!(name.whereby_prefix().len(), 39);
        assert!(name.whereby_prefix().ends_with('-'));
    }

    #[test]
    fn wire_names_round_trip() {
        for t in RecordingTrigger::ALL {
            assert_eq!(t.as_str().parse::<RecordingTrigger>(), Ok(*t));
        }
        assert_eq!(
            RecordingTrigger::Automatic2ndParticipant.as_str(),
            "automatic-2nd-participant"
        );
        assert!("Cloud".parse::<RecordingType>().is_err());
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(
            PageRequest::parse(None, None),
            Ok(PageRequest { page: 1, size: 50 })
        );
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(None, Some(101)).is_err());
        assert!(PageRequest::parse(None, Some(0)).is_err());
        let p = PageRequest::parse(Some(3), Some(10)).expect("valid");
        assert_eq!(p.offset(), 20);
        assert_eq!(p.pages(21), 3);
        assert_eq!(p.pages(0), 0);
    }

    #[test]
    fn owner_ids_are_bounded() {
        assert!(OwnerId::parse("alice").is_ok());
        assert!(OwnerId::parse("").is_err());
        assert!(OwnerId::parse(" ").is_err());
        assert!(OwnerId::parse(&"a".repeat(256)).is_err());
    }
}
