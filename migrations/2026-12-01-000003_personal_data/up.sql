-- Personal data kept only as long as it should be (docs/operations.md, "Personal
-- data"): participants' names and external ids, the raw webhook payloads and the
-- recordings are personal data.

-- A recording deleted from the bucket by an erasure.
ALTER TABLE recordings
    DROP CONSTRAINT recordings_status_valid,
    ADD CONSTRAINT recordings_status_valid CHECK (
        status IN ('unmatched', 'uploaded', 'queued', 'processing', 'done', 'failed', 'deleted', 'erased')
    ),
    ADD COLUMN erased_at timestamptz;

-- When an inbox row's payload was reduced to what deduplication needs (id, type,
-- times): by retention or by an erasure.
ALTER TABLE webhook_events ADD COLUMN reduced_at timestamptz;
CREATE INDEX webhook_events_unreduced_idx ON webhook_events (received_at) WHERE reduced_at IS NULL;

-- One row per erasure: who asked, when, what kind of subject and how much was
-- erased. Never the erased data itself (no names, no external or participant ids).
CREATE TABLE erasures (
    id                  uuid PRIMARY KEY,
    requested_by        text NOT NULL,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    subject_kind        text NOT NULL,
    -- Set for a meeting's erasure (a meeting id is not personal data).
    meeting_id          uuid,
    participants_erased integer NOT NULL,
    events_reduced      integer NOT NULL,
    recordings_erased   integer NOT NULL,
    CONSTRAINT erasures_subject_kind_valid CHECK (subject_kind IN ('external_id', 'participant_id', 'meeting'))
);
