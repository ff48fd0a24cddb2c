//! How the state webhooks maintain converges whatever the order and multiplicity of
//! Whereby's events (they come out of order and more than once). The worker folds a
//! batch with these rules in memory; where a batch's row meets the stored one, the
//! database applies the same rules in SQL (`db::events`, which says so), and the
//! worker's convergence test holds the two to each other.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::webhook::{ClientEventData, is_person, people_in_room};

/// When an event happened, as far as ordering goes: its `createdAt`, the event id
/// breaking a tie. The newer stamp decides a state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    pub at: DateTime<Utc>,
    pub event_id: String,
}

/// A participant as the events seen so far make it: the newest event decides the
/// state and the attributes; the first join is the earliest, the last leave the
/// latest, whichever events carried them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantState {
    pub participant_id: String,
    pub display_name: Option<String>,
    pub role_name: Option<String>,
    pub external_id: Option<String>,
    pub is_person: bool,
    pub joined: bool,
    pub stamp: Stamp,
    pub room_session_id: Option<String>,
    pub first_joined_at: Option<DateTime<Utc>>,
    pub last_left_at: Option<DateTime<Utc>>,
}

impl ParticipantState {
    /// What one joined (`joined`) or left event says.
    pub fn of_event(data: &ClientEventData, joined: bool, stamp: Stamp) -> Self {
        let at = stamp.at;
        Self {
            participant_id: data.participant_id.clone(),
            display_name: data.display_name.clone(),
            role_name: data.role_name.clone(),
            external_id: data.external_id.clone(),
            is_person: is_person(data.role_name.as_deref()),
            joined,
            stamp,
            room_session_id: data.room_session_id.clone(),
            first_joined_at: joined.then_some(at),
            last_left_at: (!joined).then_some(at),
        }
    }

    /// Folds `other` in; the result does not depend on which came first.
    pub fn merge(&mut self, other: Self) {
        let first_joined_at = earliest(self.first_joined_at, other.first_joined_at);
        let last_left_at = self.last_left_at.max(other.last_left_at);
        if other.stamp > self.stamp {
            *self = other;
        }
        self.first_joined_at = first_joined_at;
        self.last_left_at = last_left_at;
    }
}

/// A room session's start and end: the earliest start and the latest end seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionBounds {
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl SessionBounds {
    /// What one started (`started`) or ended event says.
    pub fn of_event(started: bool, at: DateTime<Utc>) -> Self {
        Self {
            started_at: started.then_some(at),
            ended_at: (!started).then_some(at),
        }
    }

    pub fn merge(&mut self, other: Self) {
        self.started_at = earliest(self.started_at, other.started_at);
        self.ended_at = self.ended_at.max(other.ended_at);
    }
}

/// The meeting's client count as one joined/left event reports it; the newest
/// snapshot wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCount {
    /// People in the room (machines such as the recorder not counted).
    pub people: i32,
    pub by_role: BTreeMap<String, i64>,
    pub stamp: Stamp,
}

impl ClientCount {
    /// `None` when the event carries no count.
    pub fn of_event(data: &ClientEventData, stamp: Stamp) -> Option<Self> {
        let n = data.num_clients?;
        let people = people_in_room(n, data.num_clients_by_role_name.as_ref());
        Some(Self {
            people: i32::try_from(people).unwrap_or(i32::MAX),
            by_role: data.num_clients_by_role_name.clone().unwrap_or_default(),
            stamp,
        })
    }

    /// Keeps the newer of the two.
    pub fn merge(&mut self, other: Self) {
        if other.stamp > self.stamp {
            *self = other;
        }
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("a time")
    }

    fn stamp(s: i64, id: &str) -> Stamp {
        Stamp {
            at: at(s),
            event_id: id.to_owned(),
        }
    }

    fn client(role: &str, n: Option<i64>) -> ClientEventData {
        ClientEventData {
            meeting_id: "m".to_owned(),
            participant_id: "p".to_owned(),
            room_session_id: None,
            display_name: Some(format!("as {role}")),
            role_name: Some(role.to_owned()),
            num_clients: n,
            num_clients_by_role_name: n.map(|n| BTreeMap::from([(role.to_owned(), n)])),
            external_id: None,
        }
    }

    /// Folds every state in `order` into the first.
    fn fold(states: &[ParticipantState], order: &[usize]) -> ParticipantState {
        let mut iter = order.iter().map(|&i| states[i].clone());
        let mut acc = iter.next().expect("one");
        for s in iter {
            acc.merge(s);
        }
        acc
    }

    #[test]
    fn a_participant_folds_to_the_same_state_in_any_order() {
        let states = [
            ParticipantState::of_event(&client("visitor", None), true, stamp(1, "a")),
            ParticipantState::of_event(&client("host", None), false, stamp(5, "b")),
            ParticipantState::of_event(&client("visitor", None), true, stamp(3, "c")),
            // A tie on createdAt: the greater id wins.
            ParticipantState::of_event(&client("recorder", None), true, stamp(5, "c")),
            // A duplicate.
            ParticipantState::of_event(&client("visitor", None), true, stamp(1, "a")),
        ];
        let expected = fold(&states, &[0, 1, 2, 3, 4]);
        assert!(expected.joined, "the newest event (5, c) is a join");
        assert_eq!(expected.role_name.as_deref(), Some("recorder"));
        assert!(!expected.is_person);
        assert_eq!(expected.first_joined_at, Some(at(1)));
        assert_eq!(expected.last_left_at, Some(at(5)));
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200 {
            let mut order: Vec<usize> = (0..states.len()).collect();
            rng.shuffle(&mut order);
            assert_eq!(fold(&states, &order), expected, "order {order:?}");
        }
    }

    #[test]
    fn a_session_keeps_the_earliest_start_and_the_latest_end() {
        let mut bounds = SessionBounds::of_event(false, at(9));
        bounds.merge(SessionBounds::of_event(true, at(4)));
        bounds.merge(SessionBounds::of_event(true, at(2)));
        bounds.merge(SessionBounds::of_event(false, at(7)));
        assert_eq!(
            bounds,
            SessionBounds {
                started_at: Some(at(2)),
                ended_at: Some(at(9))
            }
        );
    }

    #[test]
    fn the_newest_client_count_wins_and_machines_are_not_people() {
        let older =
            ClientCount::of_event(&client("visitor", Some(3)), stamp(1, "z")).expect("a count");
        let newer =
            ClientCount::of_event(&client("recorder", Some(1)), stamp(2, "a")).expect("a count");
        assert_eq!(older.people, 3);
        assert_eq!(newer.people, 0, "the recorder is not a person");
        let mut kept = newer.clone();
        kept.merge(older.clone());
        let mut other_way = older;
        other_way.merge(newer.clone());
        assert_eq!(kept, newer);
        assert_eq!(other_way, newer);
        assert_eq!(
            ClientCount::of_event(&client("host", None), stamp(3, "x")),
            None
        );
    }
}
