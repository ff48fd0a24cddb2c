//! `GET /v1/openapi.json`: this API's OpenAPI document, generated from the route
//! annotations and types in the code.

use actix_web::HttpResponse;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::routes::{self, branding, erasures, meetings, recordings, rooms};

#[derive(OpenApi)]
#[openapi(
    info(title = "room-api", description = "Rooms with recording settings, and Whereby meetings created on demand."),
    paths(rooms::create_room, rooms::list_rooms, rooms::get_room, rooms::get_room_by_name, rooms::update_room, rooms::delete_room,
          meetings::create_meeting_for_room, meetings::list_active_meetings, meetings::get_meeting, meetings::join_meeting,
          meetings::deactivate_meeting, meetings::list_participants, meetings::list_sessions,
          recordings::list_meeting_recordings, recordings::get_recording, recordings::list_recordings,
          recordings::report_status, erasures::erase, branding::get_branding,
          branding::put_branding, branding::put_image),
    components(schemas(routes::RoomView, routes::MeetingView, rooms::CreateRoom, rooms::UpdateRoom,
                       rooms::RoomPage, meetings::ParticipantView, meetings::SessionView,
                       recordings::RecordingView, recordings::RecordingPage, recordings::StatusReport,
                       erasures::ErasureRequest, erasures::ErasureView, routes::BrandingState,
                       branding::BrandingView, branding::BrandingUpdate, branding::BrandingColors,
                       branding::BackgroundPreset, branding::ImageInfo)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
