//! HTTP routes, all JSON, under `/v1`, plus `/healthz`, `/readyz`, `/metrics`.

pub mod branding;
pub mod erasures;
mod health;
pub mod meetings;
pub mod recordings;
pub mod rooms;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    dev::ResourceDef,
    http::{Method, StatusCode, header},
    web,
};
use chrono::{DateTime, Utc};
use db::{meetings::MeetingRow, rooms::RoomRow};
use domain::{Platform, RecordingTrigger, RecordingType, RoomMode, RoomName};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use web_common::ApiError;

use crate::{
    auth::Caller,
    errors::{self, ErrorCode},
};

/// Declares the `/v1` API routes once: registered in this order, and listed for
/// the 405 answer's `Allow` (and for the tests that hold the OpenAPI documents to
/// the routes).
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path;)+) => {
        /// Every `/v1` API route: method and path pattern.
        pub const API_ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),+];

        // The deprecated alias is still served.
        #[allow(deprecated)]
        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::method(Method::$method).to($handler));)+
        }
    };
}

// `{room}` is a room's id or its name. The deprecated `/v1/rooms/name/{name}` comes
// after the `{room}` routes, so `/v1/rooms/name/branding` is the branding of a room
// named `name`.
api_routes! {
    POST "/v1/rooms" => rooms::create_room;
    GET "/v1/rooms" => rooms::list_rooms;
    GET "/v1/rooms/{room}" => rooms::get_room;
    PATCH "/v1/rooms/{room}" => rooms::update_room;
    DELETE "/v1/rooms/{room}" => rooms::delete_room;
    GET "/v1/rooms/{room}/branding" => branding::get_branding;
    PUT "/v1/rooms/{room}/branding" => branding::put_branding;
    PUT "/v1/rooms/{room}/branding/{slot}" => branding::put_image;
    GET "/v1/rooms/{room}/branding/{slot}" => branding::get_image;
    DELETE "/v1/rooms/{room}/branding/{slot}" => branding::delete_image;
    POST "/v1/rooms/{room}/meeting" => meetings::create_meeting_for_room;
    GET "/v1/rooms/{room}/meetings/active" => meetings::list_active_meetings;
    POST "/v1/rooms/{room}/meetings/{id}/join" => meetings::join_meeting;
    GET "/v1/rooms/name/{name}" => rooms::get_room_by_name;
    GET "/v1/meetings/{id}" => meetings::get_meeting;
    GET "/v1/meetings/{id}/participants" => meetings::list_participants;
    GET "/v1/meetings/{id}/sessions" => meetings::list_sessions;
    GET "/v1/meetings/{id}/recordings" => recordings::list_meeting_recordings;
    PATCH "/v1/meetings/{id}/deactivate" => meetings::deactivate_meeting;
    GET "/v1/recordings" => recordings::list_recordings;
    GET "/v1/recordings/{id}" => recordings::get_recording;
    POST "/v1/erasures" => erasures::erase;
    POST "/v1/internal/recordings/{id}/status" => recordings::report_status;
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(web_common::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/v1/openapi.json", web::get().to(crate::openapi::serve))
        .route(
            "/v1/internal/openapi.json",
            web::get().to(crate::openapi::serve_internal),
        )
        // A path segment that does not decode is no resource of ours: the JSON 404,
        // not actix's plain-text one.
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, _| ApiError::not_found("no such resource").into()),
        );
    register(cfg);
    cfg.default_service(web::to(unrouted));
}

/// No route took the request: 405 with `Allow` when the path is one of ours under
/// another method, the JSON 404 otherwise.
async fn unrouted(req: HttpRequest) -> HttpResponse {
    static PATTERNS: std::sync::LazyLock<Vec<(&'static str, ResourceDef)>> =
        std::sync::LazyLock::new(|| {
            API_ROUTES
                .iter()
                .map(|(method, path)| (*method, ResourceDef::new(*path)))
                .collect()
        });
    let mut allowed: Vec<&str> = PATTERNS
        .iter()
        .filter(|(_, def)| def.is_match(req.path()))
        .map(|(method, _)| *method)
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    if allowed.is_empty() {
        return ApiError::not_found("no such resource").error_response();
    }
    let allow = allowed.join(", ");
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed.as_str(),
        format!("{} is not allowed here; allowed: {allow}", req.method()),
    )
    .error_response();
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

/// A room as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomView {
    pub id: Uuid,
    #[schema(value_type = RoomName)]
    pub name: String,
    /// The owner's user id (the `sub` of the token that created the room).
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub platform: Platform,
    pub recording_type: RecordingType,
    pub recording_trigger: RecordingTrigger,
    pub is_locked: bool,
    pub room_mode: RoomMode,
    pub is_shared: bool,
}

impl RoomView {
    pub fn from_row(row: RoomRow) -> Result<Self, ApiError> {
        let s = row.settings().map_err(errors::corrupt)?;
        Ok(Self {
            id: row.id,
            name: row.name,
            owner: row.owner,
            created_at: row.created_at,
            updated_at: row.updated_at,
            platform: s.platform,
            recording_type: s.recording_type,
            recording_trigger: s.recording_trigger,
            is_locked: s.is_locked,
            room_mode: s.room_mode,
            is_shared: row.is_shared,
        })
    }
}

/// A meeting as the API shows it. `host_room_url` is present for the room's owner
/// only: whoever holds it becomes a host of the Whereby room.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingView {
    pub id: Uuid,
    pub room_id: Option<Uuid>,
    /// Whereby's `meetingId`.
    pub whereby_meeting_id: String,
    /// Whereby's room name, with its leading `/`.
    pub room_name: String,
    pub room_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub host_room_url: Option<String>,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    pub platform: Platform,
    pub recording_type: RecordingType,
    pub recording_trigger: RecordingTrigger,
    pub is_locked: bool,
    pub room_mode: RoomMode,
    /// Participants in the room, as Whereby's webhooks last reported.
    pub num_clients: i32,
    pub is_active: bool,
    /// Whether the room's branding reached Whereby: `applied`, `pending` (tried
    /// again in the background) or `failed`, with the reason; absent when the room
    /// has no branding.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub branding: Option<BrandingState>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandingState {
    /// `applied`, `pending` or `failed`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

impl MeetingView {
    pub fn for_caller(row: MeetingRow, caller: &str) -> Result<Self, ApiError> {
        let s = row.settings().map_err(errors::corrupt)?;
        let is_owner = row.owner == caller;
        Ok(Self {
            id: row.id,
            room_id: row.room_id,
            whereby_meeting_id: row.whereby_meeting_id,
            room_name: row.room_name,
            room_url: row.room_url,
            host_room_url: row.host_room_url.filter(|_| is_owner),
            start_date: row.start_date,
            end_date: row.end_date,
            platform: s.platform,
            recording_type: s.recording_type,
            recording_trigger: s.recording_trigger,
            is_locked: s.is_locked,
            room_mode: s.room_mode,
            num_clients: row.num_clients,
            is_active: row.is_active,
            branding: row.branding_state.map(|state| BrandingState {
                state,
                reason: row.branding_error,
            }),
        })
    }
}

/// A list route's query string: its parameters, and the page they ask for
/// (`page` 1-based, `size` 1-100; 422 naming the parameter otherwise).
pub(crate) fn list_query(
    req: &actix_web::HttpRequest,
) -> Result<
    (
        std::collections::BTreeMap<String, String>,
        domain::PageRequest,
    ),
    ApiError,
> {
    let query =
        web::Query::<std::collections::BTreeMap<String, String>>::from_query(req.query_string())
            .map_err(|_| {
                ApiError::bad_request(
                    ErrorCode::InvalidQuery.as_str(),
                    "the query string is malformed",
                )
            })?
            .into_inner();
    let number = |field: &str| -> Result<Option<i64>, ApiError> {
        query
            .get(field)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::validation(field, "must be a whole number"))
            })
            .transpose()
    };
    let page = domain::PageRequest::parse(number("page")?, number("size")?)
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    Ok((query, page))
}

/// A path or query parameter for the OpenAPI documents.
fn parameter(
    name: &str,
    place: utoipa::openapi::path::ParameterIn,
    description: &str,
    schema: utoipa::openapi::ObjectBuilder,
) -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::{Required, path::ParameterIn};
    let required = if place == ParameterIn::Path {
        Required::True
    } else {
        Required::False
    };
    // `parameter_in` first: `required` looks at it.
    utoipa::openapi::path::ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(required)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

pub(crate) fn string_schema() -> utoipa::openapi::ObjectBuilder {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String)
}

fn integer_schema(min: u64, max: u64) -> utoipa::openapi::ObjectBuilder {
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat, Type};
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
}

/// `{room}`: a room's id or its name.
pub struct RoomParam;

impl utoipa::IntoParams for RoomParam {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        vec![parameter(
            "room",
            utoipa::openapi::path::ParameterIn::Path,
            "the room's id (a UUID) or its name",
            string_schema().min_length(Some(1)),
        )]
    }
}

/// `page` and `size` of a list ([`list_query`]).
pub struct PageParams;

impl utoipa::IntoParams for PageParams {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::ParameterIn;
        vec![
            parameter(
                "page",
                ParameterIn::Query,
                "1-based page; default 1",
                integer_schema(1, u64::from(u32::MAX)),
            ),
            parameter(
                "size",
                ParameterIn::Query,
                "items per page; default 50",
                integer_schema(1, u64::from(domain::PageRequest::MAX_SIZE)),
            ),
        ]
    }
}

/// At most this much of a caller's path segment is quoted back in a 404.
const QUOTED: usize = 80;

fn quoted(raw: &str) -> String {
    raw.chars().take(QUOTED).collect()
}

/// Ids in paths are UUIDs; anything else cannot name a resource.
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| {
        ApiError::not_found(format!(
            "no {what} with id '{}' ({what} ids are UUIDs)",
            quoted(raw)
        ))
    })
}

/// How a path names a room: by its id or by its name (a name is never a UUID, so
/// the two cannot be confused). Anything else names no room.
#[derive(Debug, Clone)]
pub enum RoomKey {
    Id(Uuid),
    Name(RoomName),
    Neither(String),
}

impl RoomKey {
    pub fn parse(raw: &str) -> Self {
        if let Ok(id) = Uuid::try_parse(raw) {
            Self::Id(id)
        } else if let Ok(name) = RoomName::parse(raw) {
            Self::Name(name)
        } else {
            Self::Neither(raw.to_owned())
        }
    }

    /// The same 404 whether the room is missing or hidden from the caller.
    pub fn not_found(&self) -> ApiError {
        match self {
            Self::Id(id) => ApiError::not_found(format!("no room with id or name '{id}'")),
            Self::Name(name) => ApiError::not_found(format!("no room with id or name '{name}'")),
            Self::Neither(raw) => ApiError::not_found(format!(
                "no room with id or name '{}': a room is named by its id (a UUID) or its name \
                 (lowercase letters, digits and single hyphens)",
                quoted(raw)
            )),
        }
    }

    /// The room, if it exists (visible or not).
    pub async fn find(
        &self,
        conn: &mut db::AsyncPgConnection,
    ) -> Result<Option<RoomRow>, db::QueryError> {
        match self {
            Self::Id(id) => db::rooms::find(conn, *id).await,
            Self::Name(name) => db::rooms::find_by_name(conn, name.as_str()).await,
            // Not looked up: it cannot match, and Postgres refuses some text (NUL).
            Self::Neither(_) => Ok(None),
        }
    }
}

/// The room `raw` names, if the caller may see it (404 otherwise, whether it
/// exists or not).
pub(crate) async fn visible_room(
    conn: &mut db::AsyncPgConnection,
    raw: &str,
    caller: &Caller,
) -> Result<RoomRow, ApiError> {
    let key = RoomKey::parse(raw);
    key.find(conn)
        .await
        .map_err(errors::query)?
        .filter(|r| r.visible_to(caller.id()))
        .ok_or_else(|| key.not_found())
}

/// The room `raw` names, if the caller owns it: 404 when they cannot see it, 403
/// when they can (it is shared) but do not own it.
pub(crate) async fn owned_room(
    conn: &mut db::AsyncPgConnection,
    raw: &str,
    caller: &Caller,
) -> Result<RoomRow, ApiError> {
    let room = visible_room(conn, raw, caller).await?;
    if room.owner != caller.id() {
        return Err(ApiError::forbidden("only the room's owner may change it"));
    }
    Ok(room)
}
