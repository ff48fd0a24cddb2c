use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app, token};

#[tokio::test]
async fn creating_a_room_applies_the_guide_defaults() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "standup"})).await;
    assert_eq!(room["name"], "standup");
    assert_eq!(room["owner"], "alice");
    assert_eq!(room["platform"], "whereby");
    assert_eq!(room["recording_type"], "cloud");
    assert_eq!(room["recording_trigger"], "automatic-2nd-participant");
    assert_eq!(room["is_locked"], false);
    assert_eq!(room["room_mode"], "normal");
    assert_eq!(room["is_shared"], false);
}

#[tokio::test]
async fn creating_a_room_with_the_guide_body_stores_every_setting() {
    let app = spawn_app().await;
    let body = json!({"name": "board-7", "platform": "whereby", "recording_type": "local",
        "recording_trigger": "prompt", "is_locked": true, "room_mode": "group", "is_shared": true});
    let room = app.create_room("alice", body.clone()).await;
    for key in [
        "name",
        "platform",
        "recording_type",
        "recording_trigger",
        "is_locked",
        "room_mode",
        "is_shared",
    ] {
        assert_eq!(room[key], body[key], "{key}");
    }
    let fetched: Value = app
        .get(
            &format!("/v1/rooms/{}", room["id"].as_str().expect("id")),
            "alice",
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched, room);
}

#[tokio::test]
async fn invalid_room_names_are_rejected_with_the_field_named() {
    let app = spawn_app().await;
    let long = "a".repeat(39);
    for bad in [
        "",
        "-a",
        "a-",
        "a--b",
        "Upper",
        "with space",
        "under_score",
        "ünï",
        "a/b",
        long.as_str(),
    ] {
        let res = app.post("/v1/rooms", "alice", &json!({"name": bad})).await;
        let err = error_code(res, 422).await;
        assert_eq!(err["code"], "validation_failed", "{bad}");
        assert_eq!(err["field"], "name", "{bad}");
    }
    let max = "a".repeat(38);
    app.create_room("alice", json!({"name": max})).await;
    assert_eq!(app.db.count("SELECT id FROM rooms").await, 1);
}

#[tokio::test]
async fn invalid_settings_are_rejected_with_the_field_named_and_nothing_stored() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "r", "recording_type": "tape"}),
            "recording_type",
        ),
        (
            json!({"name": "r", "recording_trigger": "later"}),
            "recording_trigger",
        ),
        (json!({"name": "r", "room_mode": "huge"}), "room_mode"),
        (json!({"name": "r", "platform": "zoom"}), "platform"),
        (json!({"name": "r", "is_locked": "yes"}), "is_locked"),
        (json!({"name": "r", "is_shared": 1}), "is_shared"),
        (json!({"name": 7}), "name"),
        (
            json!({"name": "r", "webhook_url": "http://x"}),
            "webhook_url",
        ),
        (json!({}), "name"),
        (json!([]), "body"),
    ];
    for (body, field) in cases {
        let res = app.post("/v1/rooms", "alice", &body).await;
        let err = error_code(res, 422).await;
        assert_eq!(err["field"].as_str(), Some(field), "{body} -> {err}");
    }
    assert_eq!(app.db.count("SELECT id FROM rooms").await, 0);
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_are_rejected() {
    let app = spawn_app().await;
    let url = format!("{}/v1/rooms", app.address);
    let send = |body: reqwest::Body, content_type: &'static str| {
        app.http
            .post(&url)
            .bearer_auth(token("alice"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = send("{\"name\":".into(), "application/json")
        .await
        .expect("send");
    assert_eq!(error_code(res, 400).await["code"], "invalid_json");

    let res = send("name=x".into(), "application/x-www-form-urlencoded")
        .await
        .expect("send");
    assert_eq!(error_code(res, 415).await["code"], "unsupported_media_type");

    let huge = format!("{{\"name\":\"r\",\"pad\":\"{}\"}}", "x".repeat(20_000));
    let res = send(huge.clone().into(), "application/json")
        .await
        .expect("send");
    assert_eq!(error_code(res, 413).await["code"], "payload_too_large");

    // Chunked, without Content-Length: still capped while streaming.
    let status = chunked_post(&app.address, &token("alice"), huge.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(app.db.count("SELECT id FROM rooms").await, 0);
}

#[tokio::test]
async fn a_duplicate_room_name_is_a_conflict() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "standup"})).await;
    let res = app
        .post("/v1/rooms", "bob", &json!({"name": "standup"}))
        .await;
    assert_eq!(error_code(res, 409).await["code"], "room_name_taken");
    assert_eq!(app.db.count("SELECT id FROM rooms").await, 1);
}

#[tokio::test]
async fn listing_shows_own_and_shared_rooms_only_paginated() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_room("alice", json!({"name": format!("alice-{i}")}))
            .await;
    }
    app.create_room("bob", json!({"name": "bob-private"})).await;
    app.create_room("bob", json!({"name": "bob-shared", "is_shared": true}))
        .await;

    let page: Value = app
        .get("/v1/rooms?size=2", "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["total"], 4);
    assert_eq!(page["pages"], 2);
    assert_eq!(page["items"].as_array().expect("items").len(), 2);
    let page2: Value = app
        .get("/v1/rooms?size=2&page=2", "alice")
        .await
        .json()
        .await
        .expect("json");
    let mut names: Vec<String> = page["items"]
        .as_array()
        .into_iter()
        .chain(page2["items"].as_array())
        .flatten()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["alice-0", "alice-1", "alice-2", "bob-shared"]);

    for bad in ["page=0", "size=0", "size=101", "page=x"] {
        let res = app.get(&format!("/v1/rooms?{bad}"), "alice").await;
        error_code(res, 422).await;
    }
}

#[tokio::test]
async fn a_private_room_is_invisible_to_others_and_a_shared_one_read_only() {
    let app = spawn_app().await;
    let private = app.create_room("alice", json!({"name": "private"})).await;
    let shared = app
        .create_room("alice", json!({"name": "shared", "is_shared": true}))
        .await;
    let private_id = private["id"].as_str().expect("id");
    let shared_id = shared["id"].as_str().expect("id");

    for path in [
        format!("/v1/rooms/{private_id}"),
        "/v1/rooms/name/private".to_owned(),
    ] {
        let res = app.get(&path, "mallory").await;
        let err = error_code(res, 404).await;
        assert!(!err.to_string().contains("alice"));
        assert_eq!(app.get(&path, "alice").await.status().as_u16(), 200);
    }
    assert_eq!(
        app.get(&format!("/v1/rooms/{shared_id}"), "bob")
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.get("/v1/rooms/name/shared", "bob")
            .await
            .status()
            .as_u16(),
        200
    );

    let res = app
        .patch(
            &format!("/v1/rooms/{shared_id}"),
            "bob",
            &json!({"is_locked": true}),
        )
        .await;
    error_code(res, 403).await;
    let res = app
        .patch(
            &format!("/v1/rooms/{private_id}"),
            "bob",
            &json!({"is_locked": true}),
        )
        .await;
    error_code(res, 404).await;
    let res = app.delete(&format!("/v1/rooms/{shared_id}"), "bob").await;
    error_code(res, 403).await;
    let res = app.delete(&format!("/v1/rooms/{private_id}"), "bob").await;
    error_code(res, 404).await;
    assert_eq!(
        app.db
            .count("SELECT id FROM rooms WHERE NOT is_locked")
            .await,
        2
    );
    let res = app.get("/v1/rooms/not-a-uuid", "alice").await;
    error_code(res, 404).await;
}

#[tokio::test]
async fn the_owner_updates_a_room_with_the_same_validation() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "standup"})).await;
    app.create_room("alice", json!({"name": "taken"})).await;
    let path = format!("/v1/rooms/{}", room["id"].as_str().expect("id"));

    let res = app
        .patch(
            &path,
            "alice",
            &json!({"recording_type": "none", "room_mode": "group", "name": "daily"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let updated: Value = res.json().await.expect("json");
    assert_eq!(updated["recording_type"], "none");
    assert_eq!(updated["room_mode"], "group");
    assert_eq!(updated["name"], "daily");
    assert_eq!(updated["recording_trigger"], "automatic-2nd-participant");

    for (body, status, field) in [
        (json!({"name": "Bad Name"}), 422, Some("name")),
        (
            json!({"recording_trigger": "never"}),
            422,
            Some("recording_trigger"),
        ),
        (json!({"owner": "bob"}), 422, Some("owner")),
        (json!({"name": "taken"}), 409, None),
    ] {
        let res = app.patch(&path, "alice", &body).await;
        let err = error_code(res, status).await;
        assert_eq!(err["field"].as_str(), field, "{body}");
    }
    let after: Value = app.get(&path, "alice").await.json().await.expect("json");
    assert_eq!(after["name"], "daily");
    assert_eq!(after["owner"], "alice");
    assert_eq!(after["recording_trigger"], "automatic-2nd-participant");
}

#[tokio::test]
async fn the_owner_deletes_a_room_and_its_meetings_end_at_whereby() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "standup"})).await;
    let (status, _) = app.meeting("standup", "alice").await;
    assert_eq!(status, 201);
    assert_eq!(app.whereby.stand_in.meeting_count(), 1);
    let path = format!("/v1/rooms/{}", room["id"].as_str().expect("id"));
    let res = app
        .request(Method::DELETE, &path, Some(&token("alice")), None)
        .await;
    assert_eq!(res.status().as_u16(), 204);
    error_code(app.get(&path, "alice").await, 404).await;
    assert_eq!(app.whereby.stand_in.meeting_count(), 0);
    // The meeting row stays for matching webhooks and recordings, inactive.
    assert_eq!(
        app.db
            .count("SELECT id FROM meetings WHERE NOT is_active AND room_id IS NULL")
            .await,
        1
    );
}

/// Sends a POST with `Transfer-Encoding: chunked` by hand and returns the status line.
async fn chunked_post(address: &str, token: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "POST /v1/rooms HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    for chunk in body.chunks(1000) {
        let framed = format!("{:x}\r\n", chunk.len());
        // The server may answer and close before we finish; that is the point.
        if stream.write_all(framed.as_bytes()).await.is_err()
            || stream.write_all(chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .await
        .expect("read status");
    line
}

#[tokio::test]
async fn every_room_route_takes_the_id_or_the_name() {
    let app = spawn_app().await;
    let room = app.create_room("alice", json!({"name": "standup"})).await;
    let id = room["id"].as_str().expect("id");
    for key in ["standup", id] {
        let res = app.get(&format!("/v1/rooms/{key}"), "alice").await;
        assert_eq!(res.status().as_u16(), 200, "{key}");
        let got: Value = res.json().await.expect("json");
        assert_eq!(got["id"], id);
        let res = app
            .request(
                Method::PUT,
                &format!("/v1/rooms/{key}/branding"),
                Some(&token("alice")),
                Some(&json!({"colors": {"primary": "#112233"}})),
            )
            .await;
        assert_eq!(res.status().as_u16(), 200, "branding by {key}");
        let (status, meeting) = app.meeting(key, "alice").await;
        assert!(status == 200 || status == 201, "meeting by {key}: {status}");
        let active: Value = app
            .get(&format!("/v1/rooms/{key}/meetings/active"), "alice")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(active[0]["id"], meeting["id"], "{key}");
        let join = app
            .post(
                &format!(
                    "/v1/rooms/{key}/meetings/{}/join",
                    meeting["id"].as_str().expect("id")
                ),
                "alice",
                &json!({}),
            )
            .await;
        assert_eq!(join.status().as_u16(), 200, "join by {key}");
    }
    // One Whereby meeting, whichever way the room was named.
    assert_eq!(app.meeting_rows().await, 1);
    let res = app
        .patch("/v1/rooms/standup", "alice", &json!({"name": "daily"}))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        app.get("/v1/rooms/daily", "alice").await.status().as_u16(),
        200
    );
    // The old path stays, as a deprecated alias.
    assert_eq!(
        app.get("/v1/rooms/name/daily", "alice")
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.delete("/v1/rooms/daily", "alice")
            .await
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        app.get(&format!("/v1/rooms/{id}"), "alice")
            .await
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn a_room_404_names_what_was_looked_up_and_says_what_a_room_key_is() {
    let app = spawn_app().await;
    app.create_room("alice", json!({"name": "secret"})).await;
    let err = error_code(app.get("/v1/rooms/standup", "alice").await, 404).await;
    assert_eq!(err["message"], "no room with id or name 'standup'");
    // Another's room: the same answer as a missing one.
    let err = error_code(app.get("/v1/rooms/secret", "mallory").await, 404).await;
    assert_eq!(err["message"], "no room with id or name 'secret'");
    let err = error_code(app.get("/v1/rooms/Stand_Up", "alice").await, 404).await;
    let message = err["message"].as_str().expect("message");
    assert!(
        message.starts_with("no room with id or name 'Stand_Up': "),
        "{message}"
    );
    assert!(message.contains("UUID"), "{message}");
    // Text Postgres cannot hold is no room either, not a 500.
    for path in [
        "/v1/rooms/a%00b",
        "/v1/rooms/name/a%00b",
        "/v1/rooms/a%00b/meeting",
    ] {
        let method = if path.ends_with("meeting") {
            Method::POST
        } else {
            Method::GET
        };
        let res = app.request(method, path, Some(&token("alice")), None).await;
        error_code(res, 404).await;
    }
}

#[tokio::test]
async fn a_room_name_cannot_be_a_uuid() {
    let app = spawn_app().await;
    for uuid in [
        "123e4567-e89b-12d3-a456-426614174000",
        "123e4567e89b12d3a456426614174000",
    ] {
        let res = app.post("/v1/rooms", "alice", &json!({"name": uuid})).await;
        let err = error_code(res, 422).await;
        assert_eq!(err["field"], "name");
        assert!(
            err["message"].as_str().expect("message").contains("UUID"),
            "{err}"
        );
    }
    app.create_room("alice", json!({"name": "r"})).await;
    let res = app
        .patch(
            "/v1/rooms/r",
            "alice",
            &json!({"name": "123e4567-e89b-12d3-a456-426614174000"}),
        )
        .await;
    assert_eq!(error_code(res, 422).await["field"], "name");
}

#[tokio::test]
async fn null_is_refused_naming_the_field_and_leaving_it_out_takes_the_default() {
    let app = spawn_app().await;
    for field in [
        "platform",
        "recording_type",
        "recording_trigger",
        "is_locked",
        "room_mode",
        "is_shared",
    ] {
        let res = app
            .post("/v1/rooms", "alice", &json!({"name": "n", field: null}))
            .await;
        let err = error_code(res, 422).await;
        assert_eq!(err["field"], field);
        assert!(
            err["message"].as_str().expect("message").contains("null"),
            "{err}"
        );
    }
    assert_eq!(app.db.count("SELECT id FROM rooms").await, 0);
    let room = app.create_room("alice", json!({"name": "n"})).await;
    assert_eq!(room["recording_type"], "cloud");
    let res = app
        .patch("/v1/rooms/n", "alice", &json!({"recording_type": null}))
        .await;
    assert_eq!(error_code(res, 422).await["field"], "recording_type");
    let res = app
        .patch("/v1/rooms/n", "alice", &json!({"name": null}))
        .await;
    assert_eq!(error_code(res, 422).await["field"], "name");
    let unchanged: Value = app
        .get("/v1/rooms/n", "alice")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unchanged["recording_type"], "cloud");
}

/// A room deleted while another request changes it: that request answers 404
/// (the room is gone), never 500. Races, so tried a number of times.
#[tokio::test]
async fn changes_racing_a_delete_are_404_not_500() {
    let app = spawn_app().await;
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRnot-a-real-image";
    let bearer = token("alice");
    for i in 0..25 {
        let name = format!("racing-{i}");
        app.create_room("alice", json!({"name": name})).await;
        let url = |tail: &str| format!("{}/v1/rooms/{name}{tail}", app.address);
        let (deleted, patched, branded, logo, meeting) = tokio::join!(
            app.http.delete(url("")).bearer_auth(&bearer).send(),
            app.http
                .patch(url(""))
                .bearer_auth(&bearer)
                .json(&json!({"is_locked": true}))
                .send(),
            app.http
                .put(url("/branding"))
                .bearer_auth(&bearer)
                .json(&json!({"colors": {"primary": "#102030"}}))
                .send(),
            app.http
                .put(url("/branding/logo"))
                .bearer_auth(&bearer)
                .header("content-type", "image/png")
                .body(png)
                .send(),
            app.http.post(url("/meeting")).bearer_auth(&bearer).send(),
        );
        assert_eq!(deleted.expect("delete").status().as_u16(), 204);
        for (what, res, ok) in [
            ("patch", patched, 200),
            ("branding", branded, 200),
            ("logo", logo, 204),
            ("meeting", meeting, 201),
        ] {
            let status = res.expect(what).status().as_u16();
            assert!(status == ok || status == 404, "{what} {i}: {status}");
        }
    }
}
