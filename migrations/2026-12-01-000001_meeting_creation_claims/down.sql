ALTER TABLE rooms
    DROP CONSTRAINT rooms_meeting_claim_complete,
    DROP COLUMN meeting_claim_until,
    DROP COLUMN meeting_claim;
