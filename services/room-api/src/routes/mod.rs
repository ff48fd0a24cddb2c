//! HTTP routes, all JSON, under `/v1`, plus `/healthz`, `/readyz`, `/metrics`.

pub mod branding;
pub mod erasures;
mod health;
pub mod meetings;
pub mod recordings;
pub mod rooms;
pub mod views;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    dev::ResourceDef,
    http::{Method, StatusCode, header},
    web,
};
use web_common::ApiError;

use crate::errors::ErrorCode;

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
