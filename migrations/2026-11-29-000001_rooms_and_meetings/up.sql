-- Rooms: a named place with recording settings; meetings are created in it on demand.
-- The CHECK constraints list the same wire names as crates/domain (RoomName, the enums).
CREATE TABLE rooms (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    owner             text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    is_locked         boolean NOT NULL DEFAULT false,
    room_mode         text NOT NULL DEFAULT 'normal',
    recording_type    text NOT NULL DEFAULT 'cloud',
    recording_trigger text NOT NULL DEFAULT 'automatic-2nd-participant',
    is_shared         boolean NOT NULL DEFAULT false,
    platform          text NOT NULL DEFAULT 'whereby',
    CONSTRAINT rooms_name_key UNIQUE (name),
    CONSTRAINT rooms_name_format CHECK (
        char_length(name) BETWEEN 1 AND 38 AND name ~ '^[a-z0-9]+(-[a-z0-9]+)*$'
    ),
    CONSTRAINT rooms_owner_format CHECK (char_length(owner) BETWEEN 1 AND 255),
    CONSTRAINT rooms_room_mode_valid CHECK (room_mode IN ('normal', 'group')),
    CONSTRAINT rooms_recording_type_valid CHECK (recording_type IN ('none', 'local', 'cloud')),
    CONSTRAINT rooms_recording_trigger_valid CHECK (
        recording_trigger IN ('none', 'prompt', 'automatic', 'automatic-2nd-participant')
    ),
    CONSTRAINT rooms_platform_valid CHECK (platform IN ('whereby'))
);

-- "My rooms and shared rooms, newest first" is the list query.
CREATE INDEX rooms_owner_created_idx ON rooms (owner, created_at DESC);
CREATE INDEX rooms_shared_created_idx ON rooms (created_at DESC) WHERE is_shared;

-- Meetings: one Whereby meeting (a transient Whereby room) with the room settings
-- copied at creation. A meeting outlives its room (room_id becomes NULL) so that
-- recordings and webhooks for it can still be matched; the owner is copied for that.
CREATE TABLE meetings (
    id                 uuid PRIMARY KEY,
    room_id            uuid REFERENCES rooms (id) ON DELETE SET NULL,
    owner              text NOT NULL,
    whereby_meeting_id text NOT NULL,
    room_name          text NOT NULL,
    room_url           text NOT NULL,
    host_room_url      text,
    start_date         timestamptz NOT NULL,
    end_date           timestamptz NOT NULL,
    is_locked          boolean NOT NULL,
    room_mode          text NOT NULL,
    recording_type     text NOT NULL,
    recording_trigger  text NOT NULL,
    platform           text NOT NULL,
    num_clients        integer NOT NULL DEFAULT 0,
    is_active          boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT meetings_whereby_meeting_id_key UNIQUE (platform, whereby_meeting_id),
    -- Whereby returns the room name with a leading slash; webhooks and recording
    -- file names are matched against it.
    CONSTRAINT meetings_room_name_format CHECK (room_name LIKE '/_%'),
    CONSTRAINT meetings_dates_ordered CHECK (end_date > start_date),
    CONSTRAINT meetings_num_clients_nonnegative CHECK (num_clients >= 0),
    CONSTRAINT meetings_room_mode_valid CHECK (room_mode IN ('normal', 'group')),
    CONSTRAINT meetings_recording_type_valid CHECK (recording_type IN ('none', 'local', 'cloud')),
    CONSTRAINT meetings_recording_trigger_valid CHECK (
        recording_trigger IN ('none', 'prompt', 'automatic', 'automatic-2nd-participant')
    ),
    CONSTRAINT meetings_platform_valid CHECK (platform IN ('whereby')),
    CONSTRAINT meetings_owner_format CHECK (char_length(owner) BETWEEN 1 AND 255)
);

CREATE INDEX meetings_room_active_idx ON meetings (room_id, end_date DESC) WHERE is_active;
CREATE INDEX meetings_room_name_idx ON meetings (room_name);
