DROP TABLE meeting_sessions;
DROP TABLE meeting_participants;
ALTER TABLE meetings
    DROP COLUMN num_clients_event_id,
    DROP COLUMN num_clients_as_of,
    DROP COLUMN num_clients_by_role;
DROP TABLE webhook_events;
