//! Whereby's meetings endpoints (`POST/GET /v1/meetings`, `GET/DELETE
//! /v1/meetings/{id}`) as the official spec describes them, and the gate every
//! API request passes first: bearer check, request log, queued faults.

use std::{collections::BTreeMap, sync::atomic::Ordering, time::Duration};

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::{
    control::RecordedRequest,
    server::{StandIn, StoredMeeting, lock},
    spec,
};

pub(crate) fn error(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// Bearer check, request log and queued faults, in the order Whereby would apply
/// them: an unauthenticated request is refused before anything else.
pub(crate) async fn gate(
    s: &StandIn,
    req: &HttpRequest,
    body: Option<Value>,
) -> Option<HttpResponse> {
    let expected = format!("Bearer {}", s.config.api_key);
    let authorised = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorised {
        return Some(error(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "Access token is missing or invalid",
        ));
    }
    lock(&s.state.requests).push(RecordedRequest {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(String::new, ToString::to_string),
        body,
    });
    let fault = s.take_fault()?;
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = fault
        .status
        .and_then(|c| actix_web::http::StatusCode::from_u16(c).ok())?;
    let mut res = HttpResponse::build(status);
    if status == actix_web::http::StatusCode::TOO_MANY_REQUESTS {
        let secs = fault.retry_after.unwrap_or(1);
        res.insert_header((header::RETRY_AFTER, secs.to_string()))
            .insert_header(("X-RateLimit-Limit", "1000"))
            .insert_header(("X-RateLimit-Remaining", "0"));
        return Some(res.json(json!({
            "error": "Rate limit active for throttle key: organization:1",
            "data": {"msLeft": secs * 1000}
        })));
    }
    Some(res.json(json!({"error": "injected fault"})))
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn render(m: &StoredMeeting, fields: &[&str]) -> Value {
    let mut out = json!({
        "meetingId": m.meeting_id,
        "roomName": m.room_name,
        "roomUrl": m.room_url,
        "startDate": m.start_date,
        "endDate": m.end_date,
    });
    if fields.contains(&"hostRoomUrl") {
        out["hostRoomUrl"] = json!(m.host_room_url);
    }
    if fields.contains(&"viewerRoomUrl") {
        out["viewerRoomUrl"] = json!(m.viewer_room_url);
    }
    out
}

pub(crate) async fn create_meeting(
    s: web::Data<StandIn>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(res) = gate(&s, &req, parsed.clone()).await {
        return res;
    }
    let Some(value) = parsed else {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "body is not valid JSON",
        );
    };
    let schema = spec::request_schema("/meetings", "post").unwrap_or(&Value::Null);
    let mut problems = spec::validate(schema, &value);
    let end_date = value
        .get("endDate")
        .and_then(Value::as_str)
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.with_timezone(&Utc));
    if let Some(end) = end_date
        && end < now() - chrono::Duration::seconds(5)
    {
        problems.push("body.endDate: must be now or later".to_owned());
    }
    let Some(end) = end_date.filter(|_| problems.is_empty()) else {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            &problems.join("; "),
        );
    };
    // "The string should be lowercase, and spaces will be automatically removed."
    let prefix: String = value
        .get("roomNamePrefix")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let id = s.state.next_id.fetch_add(1, Ordering::Relaxed);
    let room_name = format!("/{prefix}{}", uuid::Uuid::new_v4());
    let room_url = format!("https://{}.whereby.com{room_name}", s.config.subdomain);
    let meeting = StoredMeeting {
        meeting_id: id.to_string(),
        host_room_url: format!("{room_url}?roomKey={}", uuid::Uuid::new_v4().simple()),
        viewer_room_url: format!("{room_url}?roomKey={}", uuid::Uuid::new_v4().simple()),
        room_name,
        room_url,
        start_date: iso(now()),
        end_date: iso(end),
        request: value.clone(),
        clients: Vec::new(),
        session: None,
        session_started: None,
    };
    let fields: Vec<&str> = value
        .get("fields")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let out = render(&meeting, &fields);
    lock(&s.state.meetings).insert(id, meeting);
    HttpResponse::Created().json(out)
}

fn query_fields(req: &HttpRequest) -> Vec<String> {
    web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("fields").cloned())
        .map(|f| f.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

pub(crate) async fn get_meeting(
    s: web::Data<StandIn>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(res) = gate(&s, &req, None).await {
        return res;
    }
    let fields = query_fields(&req);
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let meetings = lock(&s.state.meetings);
    match id.parse::<u64>().ok().and_then(|id| meetings.get(&id)) {
        Some(m) => HttpResponse::Ok().json(render(m, &fields)),
        None => error(actix_web::http::StatusCode::NOT_FOUND, "Meeting not found"),
    }
}

pub(crate) async fn delete_meeting(
    s: web::Data<StandIn>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(res) = gate(&s, &req, None).await {
        return res;
    }
    if let Ok(id) = id.parse::<u64>() {
        lock(&s.state.meetings).remove(&id);
    }
    HttpResponse::NoContent().finish()
}

pub(crate) async fn list_meetings(s: web::Data<StandIn>, req: HttpRequest) -> HttpResponse {
    if let Some(res) = gate(&s, &req, None).await {
        return res;
    }
    let query = web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "limit must be between 1 and 100",
            );
        }
    };
    let start: u64 = query
        .get("cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let fields = query_fields(&req);
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let meetings = lock(&s.state.meetings);
    let page: Vec<(&u64, &StoredMeeting)> = meetings.range(start..).take(limit + 1).collect();
    let cursor = page.get(limit).map(|(id, _)| id.to_string());
    let results: Vec<Value> = page
        .iter()
        .take(limit)
        .map(|(_, m)| render(m, &fields))
        .collect();
    HttpResponse::Ok().json(json!({ "results": results, "cursor": cursor }))
}
