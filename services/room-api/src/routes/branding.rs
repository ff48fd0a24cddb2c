//! A room's branding (owner only): colours and a background preset as JSON, a
//! logo and a background image as raw PNG or JPEG bodies (checked by content, at
//! most 600 KiB). A change is applied to the room's active meetings at once; new
//! meetings get it right after creation.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use db::branding::Branding;
use domain::branding::{
    BACKGROUND_PALETTES, BACKGROUND_THEMES, MAX_IMAGE_BYTES, is_background_preset, parse_color,
    sniff_image,
};
use serde::{Deserialize, Serialize};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, RefOr, schema::Schema},
};
use web_common::{ApiError, read_body};

use crate::{
    access::{self, Access, RoomKey},
    auth::Caller,
    errors,
    errors::ErrorCode,
    json::Json,
    state::AppState,
};

/// `#rrggbb`, as [`parse_color`] takes it.
fn color_schema() -> ObjectBuilder {
    super::string_schema().pattern(Some("^#[0-9a-fA-F]{6}$"))
}

fn one_of(values: &[&str]) -> ObjectBuilder {
    super::string_schema().enum_values(Some(values.iter().copied()))
}

fn palette_schema() -> ObjectBuilder {
    one_of(&BACKGROUND_PALETTES)
}

fn theme_schema() -> ObjectBuilder {
    one_of(&BACKGROUND_THEMES)
}

/// Colours, each `#rrggbb`; one left out has none (Whereby's default).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingColors {
    #[serde(
        default,
        deserialize_with = "crate::json::not_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(schema_with = color_schema, nullable = false)]
    pub primary: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::json::not_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(schema_with = color_schema, nullable = false)]
    pub secondary: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::json::not_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(schema_with = color_schema, nullable = false)]
    pub focus: Option<String>,
}

/// One of Whereby's background presets.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackgroundPreset {
    #[schema(schema_with = palette_schema)]
    pub palette: String,
    #[schema(schema_with = theme_schema)]
    pub theme: String,
}

/// `PUT /v1/rooms/{room}/branding`: colours and a background preset (a preset
/// replaces an uploaded background image). What is left out is cleared; `null` is
/// refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingUpdate {
    #[serde(default, deserialize_with = "crate::json::not_null_object")]
    #[schema(nullable = false)]
    pub colors: Option<BrandingColors>,
    #[serde(default, deserialize_with = "crate::json::not_null_object")]
    #[schema(nullable = false)]
    pub background_preset: Option<BackgroundPreset>,
}

/// A PNG or JPEG image's bytes, as the request or response body.
pub struct ImageBytes;

impl PartialSchema for ImageBytes {
    fn schema() -> RefOr<Schema> {
        super::string_schema()
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for ImageBytes {}

/// Which image: the path's last segment.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BrandingSlot {
    Logo,
    Background,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageInfo {
    pub content_type: String,
    pub bytes: usize,
}

/// A room's branding; what it does not have is left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrandingView {
    pub colors: BrandingColors,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub background_preset: Option<BackgroundPreset>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub logo: Option<ImageInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub background_image: Option<ImageInfo>,
}

impl BrandingView {
    fn of(b: &Branding) -> Self {
        let info = |bytes: &Option<Vec<u8>>, ct: &Option<String>| match (bytes, ct) {
            (Some(bytes), Some(ct)) => Some(ImageInfo {
                content_type: ct.clone(),
                bytes: bytes.len(),
            }),
            _ => None,
        };
        Self {
            colors: BrandingColors {
                primary: b.primary_color.clone(),
                secondary: b.secondary_color.clone(),
                focus: b.focus_color.clone(),
            },
            background_preset: b
                .background_palette
                .clone()
                .zip(b.background_theme.clone())
                .map(|(palette, theme)| BackgroundPreset { palette, theme }),
            logo: info(&b.logo, &b.logo_content_type),
            background_image: info(&b.background, &b.background_content_type),
        }
    }
}

async fn load(
    state: &AppState,
    caller: &Caller,
    room: &str,
) -> Result<(uuid::Uuid, Branding), ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let room = access::room(
        &mut conn,
        &RoomKey::parse(room),
        caller,
        Access::Own("change it"),
    )
    .await?;
    let branding = db::branding::get(&mut conn, room.id)
        .await
        .map_err(errors::query)?
        .unwrap_or(Branding {
            room_id: room.id,
            ..Branding::default()
        });
    Ok((room.id, branding))
}

/// Stores the branding and applies it to the room's active meetings (in a task
/// of its own: Whereby's answers do not hold up this one).
async fn store(state: web::Data<AppState>, b: &Branding) -> Result<(), ApiError> {
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    db::branding::put(&mut conn, b).await.map_err(|e| {
        if errors::violated_constraint(&e) == Some("room_branding_room_id_fkey") {
            // Deleted since it was read.
            RoomKey::Id(b.room_id).not_found()
        } else {
            errors::query(e)
        }
    })?;
    let room = b.room_id;
    tokio::spawn(async move { crate::branding::apply_to_active(&state, room).await });
    Ok(())
}

#[utoipa::path(get, path = "/v1/rooms/{room}/branding", tag = "branding", params(super::RoomParam),
    responses((status = 200, description = "the room's branding", body = BrandingView),
              (status = 403, description = "the room is shared, but the caller does not own it"),
              (status = 404, description = "no room with that id or name, or one the caller cannot see")))]
pub async fn get_branding(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, b) = load(&state, &caller, &room).await?;
    Ok(HttpResponse::Ok().json(BrandingView::of(&b)))
}

#[utoipa::path(put, path = "/v1/rooms/{room}/branding", tag = "branding", params(super::RoomParam),
    request_body = BrandingUpdate,
    responses((status = 200, description = "the room's branding, applied to its active meetings in the background", body = BrandingView),
              (status = 403, description = "the room is shared, but the caller does not own it"),
              (status = 404, description = "no room with that id or name, or one the caller cannot see"),
              (status = 422, description = "a colour or preset breaks its rule, or a field is `null`")))]
pub async fn put_branding(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<String>,
    Json(update): Json<BrandingUpdate>,
) -> Result<HttpResponse, ApiError> {
    let colors = update.colors.unwrap_or_default();
    let color = |field: &str, v: Option<String>| {
        v.map(|c| parse_color(&c).ok_or_else(|| ApiError::validation(field, "must be #rrggbb")))
            .transpose()
    };
    let primary = color("colors.primary", colors.primary)?;
    let secondary = color("colors.secondary", colors.secondary)?;
    let focus = color("colors.focus", colors.focus)?;
    if let Some(p) = &update.background_preset
        && !is_background_preset(&p.palette, &p.theme)
    {
        return Err(ApiError::validation(
            "background_preset",
            "palette: default, grey, purple, burgund; theme: default, mountains, characters, rocks",
        ));
    }
    let (_, mut b) = load(&state, &caller, &room).await?;
    b.primary_color = primary;
    b.secondary_color = secondary;
    b.focus_color = focus;
    match update.background_preset {
        Some(p) => {
            b.background_palette = Some(p.palette);
            b.background_theme = Some(p.theme);
            b.background = None;
            b.background_content_type = None;
        }
        None => {
            b.background_palette = None;
            b.background_theme = None;
        }
    }
    let view = BrandingView::of(&b);
    store(state, &b).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A PNG or JPEG body: declared as such, the same by content, within the size.
async fn image_body(
    req: &HttpRequest,
    payload: &mut web::Payload,
) -> Result<(Vec<u8>, String), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if declared != "image/png" && declared != "image/jpeg" {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType.as_str(),
            "the body must be image/png or image/jpeg",
        ));
    }
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if length.is_some_and(|n| n > MAX_IMAGE_BYTES) {
        return Err(web_common::too_large(MAX_IMAGE_BYTES));
    }
    let bytes = read_body(payload, MAX_IMAGE_BYTES).await?;
    match sniff_image(&bytes) {
        Some(kind) if kind == declared => Ok((bytes.to_vec(), declared)),
        _ => Err(ApiError::validation(
            "body",
            "not a PNG or JPEG image, or not the type declared",
        )),
    }
}

fn slot(raw: &str) -> Result<BrandingSlot, ApiError> {
    match raw {
        "logo" => Ok(BrandingSlot::Logo),
        "background" => Ok(BrandingSlot::Background),
        _ => Err(ApiError::not_found(
            "no such branding image (logo or background)",
        )),
    }
}

/// The slot named by the path, and the room's branding (owner only).
async fn load_slot(
    state: &AppState,
    caller: &Caller,
    path: web::Path<(String, String)>,
) -> Result<(BrandingSlot, Branding), ApiError> {
    let (room, which) = path.into_inner();
    let which = slot(&which)?;
    let (_, b) = load(state, caller, &room).await?;
    Ok((which, b))
}

#[utoipa::path(put, path = "/v1/rooms/{room}/branding/{slot}", tag = "branding",
    params(super::RoomParam, ("slot" = BrandingSlot, Path, description = "which image")),
    request_body(description = "a PNG or JPEG image of at most 600 KiB, of the type declared",
                 content((ImageBytes = "image/png"), (ImageBytes = "image/jpeg"))),
    responses((status = 204, description = "stored; applied to the room's active meetings in the background"),
              (status = 400, description = "the body could not be read (`invalid_body`)"),
              (status = 403, description = "the room is shared, but the caller does not own it"),
              (status = 404, description = "no room with that id or name (or one the caller cannot see), or no such slot"),
              (status = 413, description = "the image is over 600 KiB"),
              (status = 415, description = "the body is not declared `image/png` or `image/jpeg`"),
              (status = 422, description = "the body is not a PNG or JPEG image, or not the type declared (`field`: `body`)")))]
pub async fn put_image(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Ownership first: a stranger's upload is not even read.
    let (which, mut b) = load_slot(&state, &caller, path).await?;
    let (bytes, content_type) = image_body(&req, &mut payload).await?;
    match which {
        BrandingSlot::Logo => {
            b.logo = Some(bytes);
            b.logo_content_type = Some(content_type);
        }
        BrandingSlot::Background => {
            b.background = Some(bytes);
            b.background_content_type = Some(content_type);
            b.background_palette = None;
            b.background_theme = None;
        }
    }
    store(state, &b).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/rooms/{room}/branding/{slot}", tag = "branding",
    params(super::RoomParam, ("slot" = BrandingSlot, Path, description = "which image")),
    responses((status = 200, description = "the image as uploaded",
               content((ImageBytes = "image/png"), (ImageBytes = "image/jpeg"))),
              (status = 403, description = "the room is shared, but the caller does not own it"),
              (status = 404, description = "no room with that id or name (or one the caller cannot see), no such slot, or no image in it")))]
pub async fn get_image(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (which, b) = load_slot(&state, &caller, path).await?;
    let (bytes, ct) = match which {
        BrandingSlot::Logo => (b.logo, b.logo_content_type),
        BrandingSlot::Background => (b.background, b.background_content_type),
    };
    match (bytes, ct) {
        (Some(bytes), Some(ct)) => Ok(HttpResponse::Ok().content_type(ct).body(bytes)),
        _ => Err(ApiError::not_found("the room has no such image")),
    }
}

#[utoipa::path(delete, path = "/v1/rooms/{room}/branding/{slot}", tag = "branding",
    params(super::RoomParam, ("slot" = BrandingSlot, Path, description = "which image")),
    responses((status = 204, description = "removed (also when there was none)"),
              (status = 403, description = "the room is shared, but the caller does not own it"),
              (status = 404, description = "no room with that id or name (or one the caller cannot see), or no such slot")))]
pub async fn delete_image(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (which, mut b) = load_slot(&state, &caller, path).await?;
    match which {
        BrandingSlot::Logo => (b.logo, b.logo_content_type) = (None, None),
        BrandingSlot::Background => (b.background, b.background_content_type) = (None, None),
    }
    store(state, &b).await?;
    Ok(HttpResponse::NoContent().finish())
}
