// The diesel schema of migrations/. Regenerate with `diesel print-schema` (diesel.toml
// points it here) after adding a migration.

diesel::table! {
    meetings (id) {
        id -> Uuid,
        room_id -> Nullable<Uuid>,
        owner -> Text,
        whereby_meeting_id -> Text,
        room_name -> Text,
        room_url -> Text,
        host_room_url -> Nullable<Text>,
        start_date -> Timestamptz,
        end_date -> Timestamptz,
        is_locked -> Bool,
        room_mode -> Text,
        recording_type -> Text,
        recording_trigger -> Text,
        platform -> Text,
        num_clients -> Int4,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        num_clients_by_role -> Jsonb,
        num_clients_as_of -> Nullable<Timestamptz>,
        num_clients_event_id -> Nullable<Text>,
        branding_state -> Nullable<Text>,
        branding_error -> Nullable<Text>,
        branding_attempts -> Int4,
    }
}

diesel::table! {
    meeting_participants (meeting_id, participant_id) {
        meeting_id -> Uuid,
        participant_id -> Text,
        display_name -> Nullable<Text>,
        role_name -> Nullable<Text>,
        external_id -> Nullable<Text>,
        is_person -> Bool,
        state -> Text,
        state_as_of -> Timestamptz,
        state_event_id -> Text,
        room_session_id -> Nullable<Text>,
        first_joined_at -> Nullable<Timestamptz>,
        last_left_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    meeting_sessions (meeting_id, room_session_id) {
        meeting_id -> Uuid,
        room_session_id -> Text,
        started_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        whereby_meeting_id -> Nullable<Text>,
        meeting_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        received_at -> Timestamptz,
        recorded_at -> Timestamptz,
        request_id -> Nullable<Text>,
        outcome -> Text,
        payload -> Jsonb,
        reason -> Nullable<Text>,
        reduced_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    recordings (id) {
        id -> Uuid,
        bucket -> Text,
        object_key -> Text,
        meeting_id -> Nullable<Uuid>,
        room_name -> Nullable<Text>,
        recorded_at -> Nullable<Timestamptz>,
        format -> Nullable<Text>,
        size_bytes -> Nullable<Int8>,
        content_type -> Nullable<Text>,
        etag -> Nullable<Text>,
        whereby_recording_id -> Nullable<Text>,
        status -> Text,
        unmatched_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        queued_at -> Nullable<Timestamptz>,
        done_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        erased_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    rooms (id) {
        id -> Uuid,
        name -> Text,
        owner -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        is_locked -> Bool,
        room_mode -> Text,
        recording_type -> Text,
        recording_trigger -> Text,
        is_shared -> Bool,
        platform -> Text,
        meeting_claim -> Nullable<Uuid>,
        meeting_claim_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    erasures (id) {
        id -> Uuid,
        requested_by -> Text,
        requested_at -> Timestamptz,
        subject_kind -> Text,
        meeting_id -> Nullable<Uuid>,
        participants_erased -> Int4,
        events_reduced -> Int4,
        recordings_erased -> Int4,
    }
}

diesel::table! {
    room_branding (room_id) {
        room_id -> Uuid,
        primary_color -> Nullable<Text>,
        secondary_color -> Nullable<Text>,
        focus_color -> Nullable<Text>,
        logo -> Nullable<Bytea>,
        logo_content_type -> Nullable<Text>,
        background -> Nullable<Bytea>,
        background_content_type -> Nullable<Text>,
        background_palette -> Nullable<Text>,
        background_theme -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(room_branding -> rooms (room_id));
diesel::joinable!(meetings -> rooms (room_id));
diesel::joinable!(meeting_participants -> meetings (meeting_id));
diesel::joinable!(meeting_sessions -> meetings (meeting_id));
diesel::joinable!(webhook_events -> meetings (meeting_id));
diesel::joinable!(recordings -> meetings (meeting_id));

diesel::allow_tables_to_appear_in_same_query!(
    erasures,
    meetings,
    meeting_participants,
    meeting_sessions,
    recordings,
    room_branding,
    rooms,
    webhook_events,
);
