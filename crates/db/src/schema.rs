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
    }
}

diesel::joinable!(meetings -> rooms (room_id));

diesel::allow_tables_to_appear_in_same_query!(meetings, rooms,);
