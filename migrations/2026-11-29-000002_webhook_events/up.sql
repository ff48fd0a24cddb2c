-- The inbox: every webhook the worker received, once (event_id is Whereby's id).
-- Inserting here in the same transaction as the event's effects is what makes the
-- effects exactly-once under at-least-once delivery. It is also the audit log.
CREATE TABLE webhook_events (
    event_id           text PRIMARY KEY,
    event_type         text NOT NULL,
    whereby_meeting_id text,
    meeting_id         uuid REFERENCES meetings (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL,
    received_at        timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    request_id         text,
    -- applied: effects written; unmatched: its meeting is unknown (kept, never
    -- dropped); stored: a type without effects (yet), kept for the record.
    outcome            text NOT NULL,
    payload            jsonb NOT NULL,
    CONSTRAINT webhook_events_outcome_valid CHECK (outcome IN ('applied', 'unmatched', 'stored')),
    CONSTRAINT webhook_events_id_nonempty CHECK (char_length(event_id) BETWEEN 1 AND 200)
);
CREATE INDEX webhook_events_meeting_idx ON webhook_events (whereby_meeting_id, created_at);
CREATE INDEX webhook_events_unmatched_idx ON webhook_events (recorded_at) WHERE outcome = 'unmatched';

-- numClients is a snapshot, not a counter: it only moves forward in event time,
-- ordered by (createdAt, event id).
ALTER TABLE meetings
    ADD COLUMN num_clients_by_role jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN num_clients_as_of timestamptz,
    ADD COLUMN num_clients_event_id text;

-- One row per participant per meeting with the latest state, in event time.
CREATE TABLE meeting_participants (
    meeting_id      uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    participant_id  text NOT NULL,
    display_name    text,
    role_name       text,
    external_id     text,
    -- Recorders and streamers are tracked but are not people in the room.
    is_person       boolean NOT NULL,
    state           text NOT NULL,
    state_as_of     timestamptz NOT NULL,
    state_event_id  text NOT NULL,
    room_session_id text,
    first_joined_at timestamptz,
    last_left_at    timestamptz,
    PRIMARY KEY (meeting_id, participant_id),
    CONSTRAINT meeting_participants_state_valid CHECK (state IN ('joined', 'left'))
);

CREATE TABLE meeting_sessions (
    meeting_id      uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    room_session_id text NOT NULL,
    started_at      timestamptz,
    ended_at        timestamptz,
    PRIMARY KEY (meeting_id, room_session_id)
);
