-- unrecognised: a type we act on whose data did not parse (a null roomSessionId, a
-- missing participant). Kept with its payload and the reason, counted, and applied
-- when it arrives again after a parser fix (`whereby-ops events reapply`): the
-- inbox treats a repeat of an unrecognised event as new.
ALTER TABLE webhook_events
    DROP CONSTRAINT webhook_events_outcome_valid,
    ADD CONSTRAINT webhook_events_outcome_valid
        CHECK (outcome IN ('applied', 'unmatched', 'stored', 'unrecognised')),
    ADD COLUMN reason text;
CREATE INDEX webhook_events_unrecognised_idx ON webhook_events (recorded_at)
    WHERE outcome = 'unrecognised';
