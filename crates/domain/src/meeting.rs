use chrono::{DateTime, Utc};

use crate::RoomSettings;

/// What to do when a meeting is asked for a room that may already have one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeetingReuse<Id> {
    /// The active meeting still fits the room: hand it out again.
    Reuse(Id),
    /// Create a new meeting; the listed active meetings no longer fit and are
    /// deactivated when the new one is stored.
    CreateReplacing(Vec<Id>),
}

/// The state of an active meeting that matters for reuse.
#[derive(Debug, Clone)]
pub struct ActiveMeeting<Id> {
    pub id: Id,
    pub settings: RoomSettings,
    pub end_date: DateTime<Utc>,
}

/// A meeting is reused while it is active, has not reached its end date and was
/// created with the settings the room has now. Among several, the one that ends
/// last wins. Active meetings whose settings differ from the room's are replaced;
/// ones that merely ended are left to housekeeping.
pub fn reuse_decision<Id: Clone>(
    room: &RoomSettings,
    active: &[ActiveMeeting<Id>],
    now: DateTime<Utc>,
) -> MeetingReuse<Id> {
    let best = active
        .iter()
        .filter(|m| m.end_date > now && m.settings == *room)
        .max_by_key(|m| m.end_date);
    match best {
        Some(m) => MeetingReuse::Reuse(m.id.clone()),
        None => MeetingReuse::CreateReplacing(
            active
                .iter()
                .filter(|m| m.settings != *room)
                .map(|m| m.id.clone())
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{RecordingType, RoomMode};

    fn meeting(id: u32, settings: RoomSettings, ends_in_min: i64) -> ActiveMeeting<u32> {
        ActiveMeeting {
            id,
            settings,
            end_date: Utc::now() + Duration::minutes(ends_in_min),
        }
    }

    #[test]
    fn reuses_the_matching_meeting_that_ends_last() {
        let room = RoomSettings::default();
        let active = [meeting(1, room, 10), meeting(2, room, 60)];
        assert_eq!(
            reuse_decision(&room, &active, Utc::now()),
            MeetingReuse::Reuse(2)
        );
    }

    #[test]
    fn replaces_meetings_whose_settings_changed() {
        let room = RoomSettings::default();
        let old = RoomSettings {
            room_mode: RoomMode::Group,
            ..room
        };
        let older = RoomSettings {
            recording_type: RecordingType::None,
            ..room
        };
        let active = [meeting(1, old, 60), meeting(2, older, 60)];
        assert_eq!(
            reuse_decision(&room, &active, Utc::now()),
            MeetingReuse::CreateReplacing(vec![1, 2])
        );
    }

    #[test]
    fn an_ended_meeting_is_not_reused() {
        let room = RoomSettings::default();
        let active = [meeting(1, room, -1)];
        assert_eq!(
            reuse_decision(&room, &active, Utc::now()),
            MeetingReuse::CreateReplacing(vec![])
        );
    }
}
