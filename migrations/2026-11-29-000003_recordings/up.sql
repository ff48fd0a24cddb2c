-- One row per recording file in the bucket, whichever announced it first (the S3
-- notification on SQS, the recording.finished webhook, or the catch-up scan).
CREATE TABLE recordings (
    id                   uuid PRIMARY KEY,
    bucket               text NOT NULL,
    object_key           text NOT NULL,
    meeting_id           uuid REFERENCES meetings (id) ON DELETE SET NULL,
    -- What the file name says: Whereby's room name (leading `/`) and the start.
    room_name            text,
    recorded_at          timestamptz,
    format               text,
    -- What S3 says (HEAD); NULL until the object has been seen.
    size_bytes           bigint,
    content_type         text,
    etag                 text,
    whereby_recording_id text,
    status               text NOT NULL,
    unmatched_reason     text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    queued_at            timestamptz,
    done_at              timestamptz,
    deleted_at           timestamptz,
    CONSTRAINT recordings_object_key UNIQUE (bucket, object_key),
    CONSTRAINT recordings_status_valid CHECK (
        status IN ('unmatched', 'uploaded', 'queued', 'processing', 'done', 'failed', 'deleted')
    ),
    CONSTRAINT recordings_unmatched_has_reason CHECK (status <> 'unmatched' OR unmatched_reason IS NOT NULL),
    CONSTRAINT recordings_size_nonnegative CHECK (size_bytes IS NULL OR size_bytes >= 0)
);
CREATE INDEX recordings_meeting_idx ON recordings (meeting_id);
CREATE INDEX recordings_status_idx ON recordings (status, updated_at);
