-- A room's meeting is created at Whereby outside any transaction: the request that
-- creates it first claims the room (a token and a deadline, committed at once), calls
-- Whereby holding no connection and no lock, then stores the meeting only if its
-- claim still stands. Concurrent requests wait for the claim; a claim whose holder
-- died lapses at its deadline.
ALTER TABLE rooms
    ADD COLUMN meeting_claim uuid,
    ADD COLUMN meeting_claim_until timestamptz,
    ADD CONSTRAINT rooms_meeting_claim_complete CHECK (
        (meeting_claim IS NULL) = (meeting_claim_until IS NULL)
    );
