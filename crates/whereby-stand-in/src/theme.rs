//! Whereby's theme API for a meeting's room (`PUT /rooms/{roomName}/theme/...`),
//! as the official spec describes it: bearer, content types (JSON, or multipart
//! with an `image` field), colour `pattern`, 204; 404 for a room it does not know.
//! What each room received is kept, so tests can check the exact requests.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use serde_json::{Value, json};

use crate::{
    api::{error, gate},
    server::{StandIn, lock},
    spec,
};

/// What a room's theme was last set to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Theme {
    pub tokens: Option<Value>,
    /// `{"theme": "default"}`, or `{"image": {"content_type", "bytes"}}`.
    pub logo: Option<Value>,
    pub room_background: Option<Value>,
}

/// One uploaded file: its part's content type and its bytes.
struct Part {
    name: String,
    content_type: Option<String>,
    data: Vec<u8>,
}

/// The parts of a `multipart/form-data` body (`None` if it is not one).
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let start = find(rest, delimiter.as_bytes())?;
        rest = rest.get(start + delimiter.len()..)?;
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let headers = std::str::from_utf8(rest.get(..header_end)?).ok()?;
        rest = rest.get(header_end + 4..)?;
        let end = find(rest, format!("\r\n{delimiter}").as_bytes())?;
        let data = rest.get(..end)?.to_vec();
        rest = rest.get(end + 2..)?;
        let mut name = String::new();
        let mut part_type = None;
        for line in headers.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                name = line
                    .split(';')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix("name="))
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_owned();
            } else if lower.starts_with("content-type:") {
                part_type = line.split_once(':').map(|(_, v)| v.trim().to_owned());
            }
        }
        parts.push(Part {
            name,
            content_type: part_type,
            data,
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_hex_color(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 7 && s.starts_with('#') && s.bytes().skip(1).all(|b| b.is_ascii_hexdigit())
    })
}

enum Which {
    Tokens,
    Logo,
    Background,
}

async fn put_theme(
    s: web::Data<StandIn>,
    req: HttpRequest,
    room: web::Path<String>,
    body: web::Bytes,
    which: Which,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let is_json = content_type.starts_with("application/json");
    let json_body: Option<Value> = if is_json {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let parts = if content_type.starts_with("multipart/form-data") {
        multipart(&content_type, &body)
    } else {
        None
    };
    // What the request log keeps: the JSON, or a summary of the upload.
    let logged = json_body.clone().or_else(|| {
        parts.as_ref().map(|ps| {
            json!({"multipart": ps.iter().map(|p| json!({
                "name": p.name, "content_type": p.content_type, "bytes": p.data.len()
            })).collect::<Vec<_>>()})
        })
    });
    if let Some(res) = gate(&s, &req, logged).await {
        return res;
    }
    let room_name = format!("/{room}");
    let known = lock(&s.state.meetings)
        .values()
        .any(|m| m.room_name == room_name);
    if !known {
        return error(StatusCode::NOT_FOUND, "Room not found");
    }
    let path = match which {
        Which::Tokens => "/rooms/{roomName}/theme/tokens",
        Which::Logo => "/rooms/{roomName}/theme/logo",
        Which::Background => "/rooms/{roomName}/theme/room-background",
    };
    let value = match (json_body, parts, &which) {
        (Some(v), _, _) => {
            let schema = spec::request_schema(path, "put").unwrap_or(&Value::Null);
            let mut problems = spec::validate(schema, &v);
            if let Some(colors) = v.pointer("/tokens/colors").and_then(Value::as_object) {
                for (k, c) in colors {
                    if !is_hex_color(c) {
                        problems.push(format!(
                            "body.tokens.colors.{k}: must match #[a-fA-F0-9]{{6}}"
                        ));
                    }
                }
            }
            if !problems.is_empty() {
                return error(StatusCode::BAD_REQUEST, &problems.join("; "));
            }
            v
        }
        (None, Some(ps), Which::Logo | Which::Background) => {
            let Some(image) = ps.into_iter().find(|p| p.name == "image") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "multipart body without an image field",
                );
            };
            if image.data.is_empty() {
                return error(StatusCode::BAD_REQUEST, "the image is empty");
            }
            json!({"image": {"content_type": image.content_type, "bytes": image.data.len()}})
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid content type: expected application/json or multipart/form-data",
            );
        }
    };
    let mut themes = lock(&s.state.themes);
    let theme = themes.entry(room_name).or_default();
    match which {
        Which::Tokens => theme.tokens = Some(value),
        Which::Logo => theme.logo = Some(value),
        Which::Background => theme.room_background = Some(value),
    }
    HttpResponse::NoContent().finish()
}

pub async fn put_tokens(
    s: web::Data<StandIn>,
    req: HttpRequest,
    room: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    put_theme(s, req, room, body, Which::Tokens).await
}

pub async fn put_logo(
    s: web::Data<StandIn>,
    req: HttpRequest,
    room: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    put_theme(s, req, room, body, Which::Logo).await
}

pub async fn put_background(
    s: web::Data<StandIn>,
    req: HttpRequest,
    room: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    put_theme(s, req, room, body, Which::Background).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_body_is_split_into_its_parts() {
        let body = b"--b1\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--b1--\r\n";
        let parts = multipart("multipart/form-data; boundary=b1", body).expect("parts");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name, "image");
        assert_eq!(parts[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[0].data, b"\x89PNG\r\n\x1a\n");
        assert!(multipart("multipart/form-data; boundary=b1", b"garbage").is_none());
        assert!(is_hex_color(&json!("#a0B1c2")) && !is_hex_color(&json!("#a0B1c")));
    }
}
