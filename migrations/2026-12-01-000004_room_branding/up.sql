-- A room's branding (Whereby's theme API): colours, a logo, a background (an
-- uploaded image or one of Whereby's presets). Images are stored here, checked
-- by content (PNG or JPEG), at most 600 KiB each.
CREATE TABLE room_branding (
    room_id                 uuid PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    primary_color           text,
    secondary_color         text,
    focus_color             text,
    logo                    bytea,
    logo_content_type       text,
    background              bytea,
    background_content_type text,
    background_palette      text,
    background_theme        text,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT room_branding_colors CHECK (
        (primary_color IS NULL OR primary_color ~ '^#[0-9a-fA-F]{6}$')
        AND (secondary_color IS NULL OR secondary_color ~ '^#[0-9a-fA-F]{6}$')
        AND (focus_color IS NULL OR focus_color ~ '^#[0-9a-fA-F]{6}$')
    ),
    CONSTRAINT room_branding_logo CHECK (
        (logo IS NULL) = (logo_content_type IS NULL)
        AND (logo IS NULL OR (octet_length(logo) <= 614400 AND logo_content_type IN ('image/png', 'image/jpeg')))
    ),
    CONSTRAINT room_branding_background CHECK (
        (background IS NULL) = (background_content_type IS NULL)
        AND (background IS NULL OR (octet_length(background) <= 614400 AND background_content_type IN ('image/png', 'image/jpeg')))
        AND (background IS NULL OR background_palette IS NULL)
        AND (background_palette IS NULL) = (background_theme IS NULL)
    )
);

-- Whether a meeting got its room's branding: applied, pending (a background loop
-- tries again), failed (after the attempts; the reason kept). NULL: nothing to apply.
ALTER TABLE meetings
    ADD COLUMN branding_state text,
    ADD COLUMN branding_error text,
    ADD COLUMN branding_attempts integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT meetings_branding_state_valid CHECK (
        branding_state IS NULL OR branding_state IN ('applied', 'pending', 'failed')
    );
CREATE INDEX meetings_branding_pending_idx ON meetings (updated_at) WHERE branding_state = 'pending';
