DROP INDEX meetings_branding_pending_idx;
ALTER TABLE meetings
    DROP CONSTRAINT meetings_branding_state_valid,
    DROP COLUMN branding_attempts,
    DROP COLUMN branding_error,
    DROP COLUMN branding_state;
DROP TABLE room_branding;
