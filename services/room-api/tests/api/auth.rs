use reqwest::Method;
use room_api::auth::{Claims, mint_hs256};
use serde_json::json;

use crate::helpers::{JWT_SECRET, error_code, now_secs, spawn_app, spawn_app_with, token};

const RSA_PRIVATE: &str = include_str!("../fixtures/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa-public.pem");

fn claims(sub: &str, exp: u64) -> Claims {
    Claims {
        sub: sub.to_owned(),
        exp,
        aud: None,
        iss: None,
    }
}

fn b64(data: &[u8]) -> String {
    // base64url without padding, enough for hand-made tokens.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

async fn status_with(app: &crate::helpers::TestApp, auth: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(format!("{}/v1/rooms", app.address));
    if let Some(value) = auth {
        req = req.header("authorization", value);
    }
    req.send().await.expect("send")
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_with_www_authenticate() {
    let app = spawn_app().await;
    let wrong_secret = mint_hs256(
        "another-secret-that-is-also-long-enough-xx",
        &claims("alice", now_secs() + 600),
    )
    .expect("mint");
    let expired = mint_hs256(JWT_SECRET, &claims("alice", now_secs() - 120)).expect("mint");
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(format!(r#"{{"sub":"alice","exp":{}}}"#, now_secs() + 600).as_bytes());
    let alg_none = format!("{header}.{payload}.");
    let no_sub = {
        let h = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let p = b64(format!(r#"{{"exp":{}}}"#, now_secs() + 600).as_bytes());
        // Signed correctly, but without the required `sub`.
        use_hs256_signature(&h, &p)
    };
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "no header"),
        (Some(format!("Bearer {wrong_secret}")), "wrong secret"),
        (Some(format!("Bearer {expired}")), "expired"),
        (Some(format!("Bearer {alg_none}")), "alg none"),
        (Some(format!("Bearer {no_sub}")), "no sub"),
        (Some("Bearer".to_owned()), "empty bearer"),
        (Some("Bearer not.a.jwt".to_owned()), "garbage"),
        (Some(format!("Basic {}", token("alice"))), "wrong scheme"),
    ];
    for (value, case) in cases {
        let res = status_with(&app, value.as_deref()).await;
        assert_eq!(res.status().as_u16(), 401, "{case}");
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")), "{case}");
        let err = error_code(res, 401).await;
        assert_eq!(err["code"], "unauthorized");
    }
    let ok = status_with(&app, Some(&format!("bearer {}", token("alice")))).await;
    assert_eq!(ok.status().as_u16(), 200);
}

/// A correctly HS256-signed token over a hand-made header and payload.
fn use_hs256_signature(header: &str, payload: &str) -> String {
    let signing_input = format!("{header}.{payload}");
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).expect("key");
    let sig = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::HS256,
    )
    .expect("sign");
    format!("{signing_input}.{sig}")
}

#[tokio::test]
async fn audience_and_issuer_are_enforced_when_configured() {
    let app = spawn_app_with(|s| {
        s.auth.auth_jwt_audience = Some("room-api".to_owned());
        s.auth.auth_jwt_issuer = Some("https://id.example".to_owned());
    })
    .await;
    let mk = |aud: Option<&str>, iss: Option<&str>| {
        mint_hs256(
            JWT_SECRET,
            &Claims {
                sub: "alice".to_owned(),
                exp: now_secs() + 600,
                aud: aud.map(str::to_owned),
                iss: iss.map(str::to_owned),
            },
        )
        .expect("mint")
    };
    for (aud, iss, expected) in [
        (Some("room-api"), Some("https://id.example"), 200),
        (Some("other-api"), Some("https://id.example"), 401),
        (None, Some("https://id.example"), 401),
        (Some("room-api"), Some("https://evil.example"), 401),
        (Some("room-api"), None, 401),
    ] {
        let res = status_with(&app, Some(&format!("Bearer {}", mk(aud, iss)))).await;
        assert_eq!(res.status().as_u16(), expected, "aud {aud:?} iss {iss:?}");
    }
}

#[tokio::test]
async fn an_audience_array_naming_us_is_accepted_and_nbf_is_honoured() {
    let app = spawn_app_with(|s| {
        s.auth.auth_jwt_audience = Some("room-api".to_owned());
    })
    .await;
    let sign = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).expect("key"),
        )
        .expect("sign")
    };
    let (now, exp) = (now_secs(), now_secs() + 600);
    for (case, claims, expected) in [
        (
            "an array naming us (as Kubernetes mints them)",
            json!({"sub": "alice", "exp": exp, "aud": ["https://kubernetes.default.svc", "room-api"]}),
            200,
        ),
        (
            "an array without us",
            json!({"sub": "alice", "exp": exp, "aud": ["other-api", "another"]}),
            401,
        ),
        (
            "not valid before an hour from now",
            json!({"sub": "alice", "exp": exp, "aud": "room-api", "nbf": now + 3600}),
            401,
        ),
        (
            "valid since a minute ago",
            json!({"sub": "alice", "exp": exp, "aud": "room-api", "nbf": now - 60}),
            200,
        ),
    ] {
        let res = status_with(&app, Some(&format!("Bearer {}", sign(claims)))).await;
        assert_eq!(res.status().as_u16(), expected, "{case}");
    }
}

#[tokio::test]
async fn rs256_tokens_verify_with_the_public_key_and_hs256_confusion_fails() {
    let app = spawn_app_with(|s| {
        s.auth.auth_jwt_secret = None;
        s.auth.auth_jwt_public_key = Some(RSA_PUBLIC.to_owned());
    })
    .await;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa key");
    let good = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims("svc-transcriber", now_secs() + 600),
        &key,
    )
    .expect("sign");
    let res = status_with(&app, Some(&format!("Bearer {good}"))).await;
    assert_eq!(res.status().as_u16(), 200);
    // The classic confusion attack: HS256 keyed with the public key's bytes.
    let confused =
        mint_hs256(RSA_PUBLIC, &claims("svc-transcriber", now_secs() + 600)).expect("mint");
    let res = status_with(&app, Some(&format!("Bearer {confused}"))).await;
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn every_api_route_requires_a_token_but_health_does_not() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::POST, "/v1/rooms"),
        (Method::GET, "/v1/rooms"),
        (
            Method::GET,
            "/v1/rooms/00000000-0000-0000-0000-000000000000",
        ),
        (Method::GET, "/v1/rooms/name/x"),
        (
            Method::PATCH,
            "/v1/rooms/00000000-0000-0000-0000-000000000000",
        ),
        (
            Method::DELETE,
            "/v1/rooms/00000000-0000-0000-0000-000000000000",
        ),
        (Method::POST, "/v1/rooms/x/meeting"),
        (Method::GET, "/v1/rooms/x/meetings/active"),
        (
            Method::POST,
            "/v1/rooms/x/meetings/00000000-0000-0000-0000-000000000000/join",
        ),
        (
            Method::GET,
            "/v1/meetings/00000000-0000-0000-0000-000000000000",
        ),
        (
            Method::PATCH,
            "/v1/meetings/00000000-0000-0000-0000-000000000000/deactivate",
        ),
    ] {
        let res = app
            .request(method.clone(), path, None, Some(&json!({})))
            .await;
        assert_eq!(res.status().as_u16(), 401, "{method} {path}");
    }
    for path in ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"] {
        let res = app.request(Method::GET, path, None, None).await;
        assert_eq!(res.status().as_u16(), 200, "{path}");
    }
}
