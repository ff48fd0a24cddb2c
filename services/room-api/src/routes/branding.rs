//! A room's branding (owner only): colours and a background preset as JSON, a
//! logo and a background image as raw PNG or JPEG bodies (checked by content, at
//! most 600 KiB). A change is applied to the room's active meetings at once; new
//! meetings get it right after creation.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use db::branding::Branding;
use domain::branding::{MAX_IMAGE_BYTES, is_background_preset, parse_color, sniff_image};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use web_common::{ApiError, JsonBody, read_body};

use super::{parse_id, rooms::owned_room};
use crate::{auth::Caller, errors, startup::AppState};

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingColors {
    /// `#rrggbb`.
    pub primary: Option<String>,
    pub secondary: Option<String>,
    pub focus: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackgroundPreset {
    /// `default`, `grey`, `purple` or `burgund`.
    pub palette: String,
    /// `default`, `mountains`, `characters` or `rocks`.
    pub theme: String,
}

/// `PUT /v1/rooms/{id}/branding`: colours and a background preset (a preset
/// replaces an uploaded background image).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingUpdate {
    #[serde(default)]
    pub colors: BrandingColors,
    pub background_preset: Option<BackgroundPreset>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageInfo {
    pub content_type: String,
    pub bytes: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandingView {
    pub colors: BrandingColors,
    pub background_preset: Option<BackgroundPreset>,
    pub logo: Option<ImageInfo>,
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
    id: &str,
) -> Result<(uuid::Uuid, Branding), ApiError> {
    let id = parse_id(id, "room")?;
    let mut conn = state.pool.get().await.map_err(errors::pool)?;
    let room = owned_room(&mut conn, id, &caller.0).await?;
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
    db::branding::put(&mut conn, b)
        .await
        .map_err(errors::query)?;
    let room = b.room_id;
    tokio::spawn(async move { crate::branding::apply_to_active(&state, room).await });
    Ok(())
}

#[utoipa::path(get, path = "/v1/rooms/{id}/branding", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = BrandingView), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_branding(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, b) = load(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(BrandingView::of(&b)))
}

#[utoipa::path(put, path = "/v1/rooms/{id}/branding", params(("id" = uuid::Uuid, Path)),
    request_body = BrandingUpdate,
    responses((status = 200, body = BrandingView), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn put_branding(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    JsonBody(update): JsonBody<BrandingUpdate>,
) -> Result<HttpResponse, ApiError> {
    let color = |field: &str, v: Option<String>| {
        v.map(|c| parse_color(&c).ok_or_else(|| ApiError::validation(field, "must be #rrggbb")))
            .transpose()
    };
    let primary = color("colors.primary", update.colors.primary)?;
    let secondary = color("colors.secondary", update.colors.secondary)?;
    let focus = color("colors.focus", update.colors.focus)?;
    if let Some(p) = &update.background_preset
        && !is_background_preset(&p.palette, &p.theme)
    {
        return Err(ApiError::validation(
            "background_preset",
            "palette: default, grey, purple, burgund; theme: default, mountains, characters, rocks",
        ));
    }
    let (_, mut b) = load(&state, &caller, &id).await?;
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
            "unsupported_media_type",
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

/// Which image: `logo` or `background` (the path's last segment).
#[derive(Clone, Copy)]
enum Slot {
    Logo,
    Background,
}

fn slot(raw: &str) -> Result<Slot, ApiError> {
    match raw {
        "logo" => Ok(Slot::Logo),
        "background" => Ok(Slot::Background),
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
) -> Result<(Slot, Branding), ApiError> {
    let (id, which) = path.into_inner();
    let which = slot(&which)?;
    let (_, b) = load(state, caller, &id).await?;
    Ok((which, b))
}

#[utoipa::path(put, path = "/v1/rooms/{id}/branding/{slot}",
    params(("id" = uuid::Uuid, Path), ("slot" = String, Path, description = "`logo` or `background`")),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 204), (status = 403), (status = 404), (status = 413), (status = 415), (status = 422)),
    security(("bearer" = [])))]
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
        Slot::Logo => {
            b.logo = Some(bytes);
            b.logo_content_type = Some(content_type);
        }
        Slot::Background => {
            b.background = Some(bytes);
            b.background_content_type = Some(content_type);
            b.background_palette = None;
            b.background_theme = None;
        }
    }
    store(state, &b).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn get_image(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (which, b) = load_slot(&state, &caller, path).await?;
    let (bytes, ct) = match which {
        Slot::Logo => (b.logo, b.logo_content_type),
        Slot::Background => (b.background, b.background_content_type),
    };
    match (bytes, ct) {
        (Some(bytes), Some(ct)) => Ok(HttpResponse::Ok().content_type(ct).body(bytes)),
        _ => Err(ApiError::not_found("no such image")),
    }
}

pub async fn delete_image(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (which, mut b) = load_slot(&state, &caller, path).await?;
    match which {
        Slot::Logo => (b.logo, b.logo_content_type) = (None, None),
        Slot::Background => (b.background, b.background_content_type) = (None, None),
    }
    store(state, &b).await?;
    Ok(HttpResponse::NoContent().finish())
}
