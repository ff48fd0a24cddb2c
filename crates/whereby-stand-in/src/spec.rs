//! Request validation driven by Whereby's official OpenAPI document (a copy in
//! `spec/`), so that the stand-in rejects what the spec does not allow.
//!
//! Supported schema keywords: `$ref`, `type`, `required`, `properties`, `items`,
//! `enum`, `maxLength`, `format: date-time`, `nullable`. Two deliberate choices:
//! - properties the schema does not list are rejected (the spec is silent on
//!   `additionalProperties`; being strict catches typos in our client);
//! - `null` is accepted where the spec's description says the value may be null
//!   (`recording.destination`, `recording.startTrigger`).
//!
//! `pattern` is not enforced: the spec's `roomNamePrefix` pattern excludes `-`,
//! which Whereby accepts in practice and its own docs use.

use std::sync::LazyLock;

use serde_json::Value;

static SPEC: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../spec/whereby-openapi.json"))
        .unwrap_or_else(|e| panic!("the bundled OpenAPI spec is not JSON: {e}"))
});

/// The official spec, parsed.
pub fn spec() -> &'static Value {
    &SPEC
}

/// The JSON schema of an operation's request body, e.g. `("/meetings", "post")`.
pub fn request_schema(path: &str, method: &str) -> Option<&'static Value> {
    spec()
        .get("paths")?
        .get(path)?
        .get(method)?
        .get("requestBody")?
        .get("content")?
        .get("application/json")?
        .get("schema")
}

/// Every way `value` breaks `schema`, as `path: problem` lines.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "body", &mut errors);
    errors
}

fn resolve(schema: &Value) -> &Value {
    let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
        return schema;
    };
    reference
        .strip_prefix("#/")
        .map(|p| p.split('/').try_fold(spec(), |node, key| node.get(key)))
        .and_then(|found| found)
        .unwrap_or(schema)
}

fn may_be_null(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
        || schema
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| d.contains("set to null") || d.contains("`null`"))
}

fn check(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(schema);
    if value.is_null() {
        if !may_be_null(schema) {
            errors.push(format!("{at}: must not be null"));
        }
        return;
    }
    let kind = schema.get("type").and_then(Value::as_str);
    let type_ok = match kind {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        _ => true,
    };
    if !type_ok {
        errors.push(format!("{at}: must be of type {}", kind.unwrap_or("?")));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!(
            "{at}: must be one of {}",
            Value::Array(allowed.clone())
        ));
    }
    if let Some(s) = value.as_str() {
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && s.chars().count() as u64 > max
        {
            errors.push(format!("{at}: longer than {max} characters"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && chrono::DateTime::parse_from_rfc3339(s).is_err()
        {
            errors.push(format!("{at}: not an RFC 3339 date-time"));
        }
    }
    if let Some(items) = value.as_array()
        && let Some(item_schema) = schema.get("items")
    {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{at}[{i}]"), errors);
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(required) {
                errors.push(format!("{at}.{required}: is required"));
            }
        }
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(item_schema) => check(item_schema, item, &format!("{at}.{key}"), errors),
                None if properties.is_some() => {
                    errors.push(format!("{at}.{key}: is not a property in the spec"));
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn meetings_post() -> &'static Value {
        request_schema("/meetings", "post").expect("spec has POST /meetings")
    }

    #[test]
    fn accepts_a_full_cloud_recording_request() {
        let body = json!({
            "endDate": "2030-01-01T10:00:00Z", "isLocked": false, "roomMode": "normal",
            "roomNamePrefix": "standup-", "roomNamePattern": "uuid", "fields": ["hostRoomUrl"],
            "recording": {"type": "cloud", "startTrigger": "automatic-2nd-participant",
                "destination": {"provider": "s3", "bucket": "b", "accessKeyId": "id",
                    "accessKeySecret": "s", "fileFormat": "mp4"}}
        });
        assert_eq!(validate(meetings_post(), &body), Vec::<String>::new());
    }

    #[test]
    fn accepts_a_null_destination_and_rejects_what_the_spec_does_not_allow() {
        let ok = json!({"endDate": "2030-01-01T10:00:00Z",
            "recording": {"type": "local", "destination": null, "startTrigger": "none"}});
        assert!(validate(meetings_post(), &ok).is_empty());

        let bad = json!({"roomMode": "huge", "fields": ["nope"], "extra": 1,
            "roomNamePrefix": "x".repeat(40), "recording": {"type": "cloud"}});
        let errors = validate(meetings_post(), &bad).join("\n");
        for expected in [
            "body.endDate: is required",
            "body.roomMode: must be one of",
            "body.fields[0]: must be one of",
            "body.extra: is not a property",
            "body.roomNamePrefix: longer than 39",
            "body.recording.destination: is required",
            "body.recording.startTrigger: is required",
        ] {
            assert!(
                errors.contains(expected),
                "missing {expected:?} in\n{errors}"
            );
        }
    }
}
