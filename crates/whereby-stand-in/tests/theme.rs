//! The theme API, through our Whereby client against the stand-in: the exact
//! requests (one path segment for the room name, never `/rooms//…`), validation
//! by the official spec, 404 for an unknown room, and retries on faults.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use whereby::{RetryPolicy, ThemeBackground, ThemeColors, ThemeImage, WherebyClient, WherebyError};
use whereby_stand_in::{Fault, StandInConfig, StandInServer};

const KEY: &str = "k-theme";

async fn setup() -> (StandInServer, WherebyClient, String) {
    let server = StandInServer::spawn(StandInConfig {
        api_key: KEY.to_owned(),
        subdomain: "acme".to_owned(),
        webhooks: None,
        s3_endpoint: None,
    })
    .expect("start");
    let client = WherebyClient::new(
        &server.api_url,
        SecretString::from(KEY.to_owned()),
        Duration::from_secs(5),
        RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        None,
    )
    .expect("client");
    let created: Value = reqwest::Client::new()
        .post(format!("{}/meetings", server.api_url))
        .bearer_auth(KEY)
        .json(&json!({"endDate": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(), "roomNamePrefix": "brand"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let room_name = created["roomName"].as_str().expect("room name").to_owned();
    (server, client, room_name)
}

fn theme_requests(server: &StandInServer) -> Vec<(String, String, Option<Value>)> {
    server
        .stand_in
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/theme/"))
        .map(|r| (r.method, r.path, r.body))
        .collect()
}

#[tokio::test]
async fn colours_a_logo_and_a_preset_background_are_set_with_the_exact_requests() {
    let (server, client, room) = setup().await;
    let segment = room.trim_start_matches('/');
    let colors = ThemeColors {
        primary: Some("#112233".to_owned()),
        secondary: Some("#aabbcc".to_owned()),
        focus: None,
    };
    client
        .set_theme_colors(&room, Some(&colors))
        .await
        .expect("colours");
    let png = ThemeImage {
        content_type: "image/png".to_owned(),
        bytes: b"\x89PNG\r\n\x1a\nnot-really".to_vec(),
    };
    client
        .set_theme_logo(&room, Some(&png))
        .await
        .expect("logo");
    client
        .set_theme_background(
            &room,
            &ThemeBackground::Preset {
                palette: "grey".to_owned(),
                theme: "mountains".to_owned(),
            },
        )
        .await
        .expect("background");
    client
        .set_theme_logo(&room, None)
        .await
        .expect("default logo");

    let requests = theme_requests(&server);
    assert_eq!(
        requests
            .iter()
            .map(|(m, p, _)| (m.as_str(), p.as_str()))
            .collect::<Vec<_>>(),
        [
            ("PUT", format!("/v1/rooms/{segment}/theme/tokens").as_str()),
            ("PUT", format!("/v1/rooms/{segment}/theme/logo").as_str()),
            (
                "PUT",
                format!("/v1/rooms/{segment}/theme/room-background").as_str()
            ),
            ("PUT", format!("/v1/rooms/{segment}/theme/logo").as_str()),
        ]
    );
    assert_eq!(
        requests[0].2,
        Some(
            json!({"tokens": {"colors": {"primary": "#112233", "secondary": "#aabbcc"}}, "tokensPreset": "custom"})
        )
    );
    assert_eq!(
        requests[1].2,
        Some(
            json!({"multipart": [{"name": "image", "content_type": "image/png", "bytes": png.bytes.len()}]})
        )
    );
    assert_eq!(
        requests[2].2,
        Some(json!({"palette": "grey", "theme": "mountains"}))
    );
    assert_eq!(requests[3].2, Some(json!({"theme": "default"})));
    let theme = server.stand_in.theme(&room).expect("a theme");
    assert_eq!(theme.logo, Some(json!({"theme": "default"})));
    assert!(theme.tokens.is_some() && theme.room_background.is_some());
}

#[tokio::test]
async fn what_the_spec_refuses_is_refused_and_faults_are_retried() {
    let (server, client, room) = setup().await;
    // Not a #rrggbb colour: 400 from the spec's pattern, not retried.
    let bad = ThemeColors {
        primary: Some("red".to_owned()),
        secondary: None,
        focus: None,
    };
    let e = client
        .set_theme_colors(&room, Some(&bad))
        .await
        .expect_err("400");
    assert!(
        matches!(e, WherebyError::Rejected { status: 400, .. }),
        "{e:?}"
    );
    // A preset the spec does not list.
    let e = client
        .set_theme_background(
            &room,
            &ThemeBackground::Preset {
                palette: "neon".to_owned(),
                theme: "default".to_owned(),
            },
        )
        .await
        .expect_err("400");
    assert!(
        matches!(e, WherebyError::Rejected { status: 400, .. }),
        "{e:?}"
    );
    // A room Whereby does not know.
    let e = client
        .set_theme_colors("/no-such-room", None)
        .await
        .expect_err("404");
    assert!(matches!(e, WherebyError::NotFound), "{e:?}");
    // Not a room name at all: refused before any request.
    assert!(client.set_theme_colors("/a/b", None).await.is_err());
    // A 503 then a 429 are retried; the third attempt lands.
    server.stand_in.push_fault(Fault {
        status: Some(503),
        ..Default::default()
    });
    server.stand_in.push_fault(Fault {
        status: Some(429),
        retry_after: Some(0),
        ..Default::default()
    });
    client.set_theme_colors(&room, None).await.expect("retried");
    assert_eq!(
        server.stand_in.theme(&room).and_then(|t| t.tokens),
        Some(json!({"tokensPreset": "default"}))
    );
}
