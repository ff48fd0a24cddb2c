//! This API's OpenAPI documents, generated from the route annotations and types in
//! the code: `GET /v1/openapi.json` for clients, `GET /v1/internal/openapi.json`
//! for the routes of internal services and operators (status reports from the
//! processing pipeline, erasures), which the ingress does not publish.
//!
//! What holds for every operation is added once, by [`Conventions`], rather than
//! on each annotation: the bearer requirement and its 401, 500, 503 (the request
//! deadline applies to every route), the 400/413/415/422 of a JSON body, and the
//! one error schema on every error response.

use actix_web::HttpResponse;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, Content, Ref, RefOr, Required,
        header::HeaderBuilder,
        link::LinkBuilder,
        path::{Operation, PathItem},
        request_body::RequestBody,
        response::Response,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};

use crate::{
    errors::{ErrorBody, ErrorCode, ErrorDetail},
    routes::{self, branding, erasures, meetings, recordings, rooms, views},
};

/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(title = "room-api", description = "Rooms with recording settings, and Whereby meetings created on demand. \
        A room is addressed by its id or its name in `/v1/rooms/{room}`. Every error answers \
        `{\"error\": {\"code\", \"message\", \"field\"?}}`; match on `code`."),
    paths(rooms::create_room, rooms::list_rooms, rooms::get_room, rooms::update_room, rooms::delete_room,
          rooms::get_room_by_name,
          branding::get_branding, branding::put_branding, branding::put_image, branding::get_image,
          branding::delete_image,
          meetings::create_meeting_for_room, meetings::list_active_meetings, meetings::join_meeting,
          meetings::get_meeting, meetings::deactivate_meeting, meetings::list_participants,
          meetings::list_sessions,
          recordings::list_meeting_recordings, recordings::get_recording, recordings::list_recordings),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode, domain::RoomName,
                       views::RoomView, views::MeetingView, views::BrandingState,
                       rooms::CreateRoom, rooms::UpdateRoom, views::RoomPage,
                       views::ParticipantView, views::SessionView,
                       views::RecordingView, views::RecordingPage,
                       branding::BrandingView, branding::BrandingUpdate, branding::BrandingColors,
                       branding::BackgroundPreset, branding::ImageInfo, branding::ImageBytes,
                       branding::BrandingSlot)),
    tags((name = "rooms"), (name = "branding", description = "the room owner's colours, logo and background"),
         (name = "meetings"), (name = "recordings")),
    modifiers(&Conventions, &Links),
    security(("bearer" = []))
)]
pub struct PublicApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "room-api (internal)", description = "Routes for internal services and operators; \
        not published by the ingress. Errors as in the public document."),
    paths(recordings::report_status, erasures::erase),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode, views::RecordingView,
                       recordings::StatusReport, erasures::ErasureRequest, erasures::ErasureView)),
    modifiers(&Conventions, &ExactlyOneSubject),
    security(("bearer" = []))
)]
pub struct InternalApi;

/// An erasure names exactly one subject. (Set here: utoipa 5.5's `min_properties`
/// attribute writes `maxProperties`.)
struct ExactlyOneSubject;

impl Modify for ExactlyOneSubject {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let schemas = &mut doc.components.get_or_insert_with(Default::default).schemas;
        if let Some(RefOr::T(openapi::schema::Schema::Object(o))) =
            schemas.get_mut("ErasureRequest")
        {
            o.min_properties = Some(1);
            o.max_properties = Some(1);
        }
    }
}

/// The public document as served.
pub fn public() -> serde_json::Value {
    as_served(PublicApi::openapi())
}

/// The internal document as served.
pub fn internal() -> serde_json::Value {
    as_served(InternalApi::openapi())
}

/// The document as JSON, with the link objects' keys spelled as OpenAPI spells
/// them (utoipa 5.5 writes `operation_id`).
fn as_served(doc: openapi::OpenApi) -> serde_json::Value {
    let mut json = serde_json::to_value(doc).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        serde_json::Value::Null
    });
    if let Some(paths) = json.get_mut("paths").and_then(|p| p.as_object_mut()) {
        let responses = paths
            .values_mut()
            .filter_map(|item| item.as_object_mut())
            .flat_map(|item| item.values_mut())
            .filter_map(|op| op.get_mut("responses")?.as_object_mut())
            .flat_map(|responses| responses.values_mut());
        for response in responses {
            let links = response
                .get_mut("links")
                .and_then(|l| l.as_object_mut())
                .into_iter()
                .flat_map(|links| links.values_mut())
                .filter_map(|link| link.as_object_mut());
            for link in links {
                for (from, to) in [
                    ("operation_id", "operationId"),
                    ("operation_ref", "operationRef"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(value) = link.remove(from) {
                        link.insert(to.to_owned(), value);
                    }
                }
            }
        }
    }
    json
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(public())
}

pub async fn serve_internal() -> HttpResponse {
    HttpResponse::Ok().json(internal())
}

/// Every operation of a path, mutably.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

fn error_response(description: &str) -> Response {
    let mut res = Response::new(description);
    res.content.insert(
        "application/json".to_owned(),
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    res
}

/// What a status means when an operation does not say more.
fn default_description(status: &str) -> &'static str {
    match status {
        "400" => "the request is malformed",
        "401" => {
            "no bearer token, or one that is malformed, badly signed or expired (`unauthorized`)"
        }
        "403" => "authenticated, but not allowed (`forbidden`)",
        "404" => "no such resource, or one the caller cannot see",
        "409" => "the request conflicts with the current state",
        "413" => "the body is over the size limit (`payload_too_large`)",
        "415" => "the body's `Content-Type` is not `application/json` (`unsupported_media_type`)",
        "422" => "a field breaks a rule, or is `null` (`validation_failed`, naming it in `field`)",
        "500" => "an unexpected failure; its cause is logged (`internal_error`)",
        "502" => "Whereby failed",
        "503" => {
            "the database is unavailable (`database_unavailable`) or busy (`busy`), or the request \
             took longer than its deadline (`timeout`); retry"
        }
        _ => "an error",
    }
}

fn is_json(body: &RequestBody) -> bool {
    body.content.contains_key("application/json")
}

/// The rules every operation follows; see the module's comment.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                BEARER,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "a JWT whose `sub` is the caller (`room-api dev-token NAME` locally)",
                        ))
                        .build(),
                ),
            );
        for item in doc.paths.paths.values_mut() {
            for op in operations_mut(item) {
                op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                let mut implied = vec!["401", "500", "503"];
                if op.request_body.as_ref().is_some_and(is_json) {
                    implied.extend(["400", "413", "415", "422"]);
                }
                let responses = &mut op.responses.responses;
                for status in implied {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(Response::new("")));
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if status.starts_with('4') || status.starts_with('5') {
                        if response.description.is_empty() {
                            response.description = default_description(status).to_owned();
                        }
                        let described = std::mem::take(&mut response.description);
                        let mut with_schema = error_response(&described);
                        with_schema.headers = std::mem::take(&mut response.headers);
                        *response = with_schema;
                    }
                    if status == "401" {
                        response.headers.insert(
                            "www-authenticate".to_owned(),
                            HeaderBuilder::new()
                                .schema(routes::string_schema())
                                .description(Some("`Bearer`, with the error when a token was sent"))
                                .build(),
                        );
                    }
                }
                if let Some(body) = &mut op.request_body {
                    body.required = Some(Required::True);
                }
            }
        }
    }
}

/// A link: the operation it leads to, and its parameters (name, expression).
type LinkSpec = (&'static str, &'static [(&'static str, &'static str)]);

const ROOM_ID: &[(&str, &str)] = &[("room", "$response.body#/id")];
const MEETING_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

/// From a created room, by its id (a name would do as well, but one key per room
/// keeps a client's, or a fuzzer's, idea of "the same room" simple).
const FROM_ROOM: &[LinkSpec] = &[
    ("get_room", ROOM_ID),
    ("update_room", ROOM_ID),
    ("delete_room", ROOM_ID),
    ("get_branding", ROOM_ID),
    ("put_branding", ROOM_ID),
    ("create_meeting_for_room", ROOM_ID),
    ("list_active_meetings", ROOM_ID),
];

const FROM_MEETING: &[LinkSpec] = &[
    ("get_meeting", MEETING_ID),
    ("deactivate_meeting", MEETING_ID),
    ("list_participants", MEETING_ID),
    ("list_sessions", MEETING_ID),
    ("list_meeting_recordings", MEETING_ID),
    (
        "join_meeting",
        &[("room", "$request.path.room"), ("id", "$response.body#/id")],
    ),
];

/// How the responses of the public operations lead to others (OpenAPI links), for
/// clients and for stateful testing.
struct Links;

impl Modify for Links {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in operations_mut(item) {
                let (statuses, links): (&[&str], &[LinkSpec]) = match op.operation_id.as_deref() {
                    Some("create_room") => (&["201"], FROM_ROOM),
                    Some("create_meeting_for_room") => (&["200", "201"], FROM_MEETING),
                    _ => continue,
                };
                for status in statuses {
                    let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
                        continue;
                    };
                    for (target, parameters) in links {
                        let mut link = LinkBuilder::new().operation_id(*target);
                        for (name, value) in *parameters {
                            link = link.parameter(*name, *value);
                        }
                        response
                            .links
                            .insert((*target).to_owned(), RefOr::T(link.build()));
                    }
                }
            }
        }
    }
}
