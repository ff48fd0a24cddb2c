DROP INDEX webhook_events_unrecognised_idx;
UPDATE webhook_events SET outcome = 'stored' WHERE outcome = 'unrecognised';
ALTER TABLE webhook_events
    DROP COLUMN reason,
    DROP CONSTRAINT webhook_events_outcome_valid,
    ADD CONSTRAINT webhook_events_outcome_valid
        CHECK (outcome IN ('applied', 'unmatched', 'stored'));
