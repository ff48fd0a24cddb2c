//! The OpenAPI documents hold what a client generator relies on, and say what the
//! running API does (deploy/local/fuzz-api.sh checks the rest with a fuzzer).

use std::collections::BTreeSet;

use reqwest::Method;
use room_api::{errors::ErrorCode, routes::API_ROUTES};
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app, token};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn documents() -> [(&'static str, Value); 2] {
    [
        ("public", room_api::openapi::public()),
        ("internal", room_api::openapi::internal()),
    ]
}

/// Every operation: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

fn nullable(schema: &Value) -> bool {
    let null_type =
        |t: &Value| t == "null" || t.as_array().is_some_and(|a| a.contains(&json!("null")));
    null_type(&schema["type"])
        || schema["nullable"] == true
        || ["oneOf", "anyOf"].iter().any(|k| {
            schema[*k]
                .as_array()
                .is_some_and(|alts| alts.iter().any(|s| null_type(&s["type"])))
        })
}

/// The dotted paths of every property of a request schema, nested objects too.
fn property_paths(doc: &Value, schema: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    let schema = resolve(doc, schema);
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.push((path.clone(), prop.clone()));
        property_paths(doc, prop, &path, out);
    }
}

#[tokio::test]
async fn the_served_documents_are_the_generated_ones_and_public_without_internal_routes() {
    let app = spawn_app().await;
    for (path, expected) in [
        ("/v1/openapi.json", room_api::openapi::public()),
        ("/v1/internal/openapi.json", room_api::openapi::internal()),
    ] {
        let res = app.request(Method::GET, path, None, None).await;
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let served: Value = res.json().await.expect("json");
        assert_eq!(served, expected, "{path}");
    }
    let public = room_api::openapi::public();
    let internal = room_api::openapi::internal();
    for path in ["/v1/internal/recordings/{id}/status", "/v1/erasures"] {
        assert!(public["paths"].get(path).is_none(), "{path} is public");
        assert!(internal["paths"].get(path).is_some(), "{path} is missing");
    }
    // The documents together list exactly the routes served.
    let mut documented: BTreeSet<(String, String)> = BTreeSet::new();
    for (_, doc) in documents() {
        for (method, path, _) in operations(&doc) {
            assert!(
                documented.insert((method.to_uppercase(), path.clone())),
                "{method} {path} is in both documents"
            );
        }
    }
    let routes: BTreeSet<(String, String)> = API_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, routes);
}

#[test]
fn every_operation_requires_the_bearer_token_and_lists_401() {
    for (name, doc) in documents() {
        let scheme = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(scheme["type"], "http", "{name}");
        assert_eq!(scheme["scheme"], "bearer", "{name}");
        assert_eq!(doc["security"], json!([{"bearer": []}]), "{name}");
        for (method, path, op) in operations(&doc) {
            assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
            assert!(
                op["responses"]["401"]["headers"]["www-authenticate"].is_object(),
                "{method} {path}: 401 with WWW-Authenticate"
            );
            for status in ["500", "503"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{method} {path}: {status}"
                );
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                for status in ["400", "413", "415", "422"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_response_is_described_and_every_error_refers_to_the_one_error_schema() {
    for (name, doc) in documents() {
        for (method, path, op) in operations(&doc) {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success"
            );
            for (status, response) in responses {
                let description = response["description"].as_str().unwrap_or_default();
                assert!(
                    !description.is_empty(),
                    "{method} {path} {status}: no description"
                );
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"],
                        json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}),
                        "{name}: {method} {path} {status}"
                    );
                }
            }
        }
        let detail = &doc["components"]["schemas"]["ErrorDetail"];
        assert_eq!(detail["required"], json!(["code", "message"]), "{name}");
        assert!(!nullable(&detail["properties"]["field"]), "{name}");
        assert_eq!(
            doc["components"]["schemas"]["ErrorBody"]["required"],
            json!(["error"]),
            "{name}"
        );
        let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code"))
            .collect();
        let expected: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, expected, "{name}");
    }
}

#[test]
fn the_room_name_rule_is_in_the_document() {
    let doc = room_api::openapi::public();
    let schemas = &doc["components"]["schemas"];
    let rule = &schemas["RoomName"];
    assert_eq!(rule["pattern"], domain::room::ROOM_NAME_PATTERN);
    assert_eq!(rule["minLength"], 1);
    assert_eq!(rule["maxLength"], domain::room::ROOM_NAME_MAX_LEN);
    let by_ref = json!({"$ref": "#/components/schemas/RoomName"});
    assert_eq!(schemas["CreateRoom"]["properties"]["name"], by_ref);
    assert_eq!(schemas["UpdateRoom"]["properties"]["name"], by_ref);
    assert_eq!(schemas["RoomView"]["properties"]["name"], by_ref);
    // The wire names of the settings, as the API sends and takes them.
    assert_eq!(
        schemas["RecordingType"]["enum"],
        json!(["none", "local", "cloud"])
    );
    let alias = &doc["paths"]["/v1/rooms/name/{name}"]["get"];
    assert_eq!(alias["deprecated"], true);
    for path in ["/v1/rooms/{room}", "/v1/rooms/{room}/meeting"] {
        let item = &doc["paths"][path];
        let op = METHODS
            .iter()
            .find_map(|m| item.get(*m))
            .expect("operation");
        assert_eq!(op["parameters"][0]["name"], "room", "{path}");
    }
}

/// For every JSON body: no property is nullable, and sending `null` for one is a
/// 422 naming it.
#[tokio::test]
async fn no_request_field_is_nullable_and_null_is_refused_naming_the_field() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "nulls"})).await;
    let mut tried = 0;
    for (_, doc) in documents() {
        for (method, path, op) in operations(&doc) {
            let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema")
            else {
                continue;
            };
            let mut props = Vec::new();
            property_paths(&doc, schema, "", &mut props);
            let url = path
                .replace("{room}", "nulls")
                .replace("{id}", "00000000-0000-4000-8000-000000000000");
            for (field, prop) in props {
                assert!(
                    !nullable(resolve(&doc, &prop)),
                    "{method} {path}: {field} is nullable"
                );
                let mut body = Value::Null;
                for part in field.rsplit('.') {
                    let mut object = serde_json::Map::new();
                    object.insert(part.to_owned(), body);
                    body = Value::Object(object);
                }
                let res = app
                    .request(
                        Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
                        &url,
                        Some(&token("alice")),
                        Some(&body),
                    )
                    .await;
                let err = error_code(res, 422).await;
                assert_eq!(err["field"], field.as_str(), "{method} {path} {body}");
                tried += 1;
            }
        }
    }
    assert!(tried >= 20, "only {tried} fields tried");
}

/// What a caller who does not own the room gets is what the document says: 404 for
/// a private room (never 403, which would tell it exists), and 403 on a shared
/// room exactly where the document lists 403.
#[tokio::test]
async fn a_non_owner_gets_the_status_the_document_lists() {
    let app = spawn_app().await;
    let doc = room_api::openapi::public();
    app.create_room("alice", json!({"name": "private"})).await;
    app.create_room("alice", json!({"name": "shared", "is_shared": true}))
        .await;
    let (status, private_meeting) = app.meeting("private", "alice").await;
    assert_eq!(status, 201);
    let (status, shared_meeting) = app.meeting("shared", "alice").await;
    assert_eq!(status, 201);
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRnot-a-real-image";
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        if !path.contains("{room}") && !path.starts_with("/v1/meetings/") {
            continue;
        }
        let documented = |s: &str| op["responses"].get(s).is_some();
        for (room, meeting, private) in [
            ("private", &private_meeting, true),
            ("shared", &shared_meeting, false),
        ] {
            let url = path
                .replace("{room}", room)
                .replace("{id}", meeting["id"].as_str().expect("id"))
                .replace("{slot}", "logo");
            let mut req = app
                .http
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
                    format!("{}{url}", app.address),
                )
                .bearer_auth(token("bob"));
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                req = req.json(&json!({}));
            } else if op["requestBody"]["content"].get("image/png").is_some() {
                req = req.header("content-type", "image/png").body(png);
            }
            let status = req.send().await.expect("request").status().as_u16();
            let expected = if private {
                404
            } else if documented("403") {
                403
            } else {
                // Visible and open to any caller: whatever success it documents.
                assert!((200..300).contains(&status), "{method} {url}: {status}");
                status
            };
            assert_eq!(status, expected, "{method} {url}");
            assert!(
                documented(&status.to_string()),
                "{method} {path}: {status} undocumented"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} checked");
}

#[tokio::test]
async fn another_method_on_a_route_is_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::PUT, "/v1/rooms/standup", "DELETE, GET, PATCH"),
        (Method::DELETE, "/v1/rooms", "GET, POST"),
        (Method::GET, "/v1/rooms/standup/meeting", "POST"),
        (Method::POST, "/v1/rooms/name/standup", "GET"),
    ] {
        let res = app
            .request(method.clone(), path, Some(&token("alice")), None)
            .await;
        assert_eq!(
            res.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        assert_eq!(error_code(res, 405).await["code"], "method_not_allowed");
    }
    let res = app.get("/v1/nothing-here", "alice").await;
    assert_eq!(error_code(res, 404).await["code"], "not_found");
}
