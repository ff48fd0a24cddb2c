DROP TABLE erasures;
DROP INDEX webhook_events_unreduced_idx;
ALTER TABLE webhook_events DROP COLUMN reduced_at;
UPDATE recordings SET status = 'deleted' WHERE status = 'erased';
ALTER TABLE recordings
    DROP COLUMN erased_at,
    DROP CONSTRAINT recordings_status_valid,
    ADD CONSTRAINT recordings_status_valid CHECK (
        status IN ('unmatched', 'uploaded', 'queued', 'processing', 'done', 'failed', 'deleted')
    );
