//! Identities from key sets that rotate, roles from claims, and Kubernetes
//! service-account tokens, against real key-set servers over HTTP.

use std::{
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, now_secs, spawn_app_with};

const KEYS: &str = include_str!("../fixtures/jwks-keys.json");
const RSA_A: &str = include_str!("../fixtures/rsa-private.pem");
const RSA_B: &str = include_str!("../fixtures/rsa-b-private.pem");
const EC_C: &str = include_str!("../fixtures/ec-private.pem");
const CLUSTER: &str = include_str!("../fixtures/cluster-private.pem");
const RSA_A_PUBLIC: &str = include_str!("../fixtures/rsa-public.pem");

const IDP: &str = "https://idp.example.test/realms/acme";
const AUDIENCE: &str = "room-api";
const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const POD_TOKEN: &str = "pod-token-for-the-issuer-discovery-endpoint";

/// What a key-set server answers: a JWKS document, or an HTTP error status.
#[derive(Clone)]
enum Answer {
    Keys(Vec<&'static str>),
    Status(u16),
    /// A 200 with this many bytes of padding around the keys (over the limit).
    Oversized(usize),
}

/// A JWKS endpoint whose answer a test changes, counting the fetches it serves.
/// With `bearer`, it refuses fetches without that token, as the Kubernetes API
/// server's `/openid/v1/jwks` does.
struct KeySetServer {
    url: String,
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
}

struct ServerState {
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
    bearer: Option<String>,
}

async fn serve_keys(req: HttpRequest, state: web::Data<ServerState>) -> HttpResponse {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if let Some(bearer) = &state.bearer {
        let sent = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if sent != Some(&format!("Bearer {bearer}")) {
            return HttpResponse::Unauthorized().finish();
        }
    }
    let answer = state.answer.lock().expect("answer").clone();
    match answer {
        Answer::Keys(kids) => {
            let all: Value = serde_json::from_str(KEYS).expect("fixture");
            let keys: Vec<Value> = kids.iter().map(|k| all[*k].clone()).collect();
            HttpResponse::Ok().json(json!({ "keys": keys }))
        }
        Answer::Oversized(bytes) => {
            let all: Value = serde_json::from_str(KEYS).expect("fixture");
            HttpResponse::Ok().json(json!({ "keys": [all["rsa-a"]], "padding": "x".repeat(bytes) }))
        }
        Answer::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("status"))
                .finish()
        }
    }
}

impl KeySetServer {
    fn start(answer: Answer, bearer: Option<&str>) -> Self {
        let answer = Arc::new(Mutex::new(answer));
        let fetches = Arc::new(AtomicUsize::new(0));
        let state = web::Data::new(ServerState {
            answer: answer.clone(),
            fetches: fetches.clone(),
            bearer: bearer.map(str::to_owned),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/jwks", web::get().to(serve_keys))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/jwks"),
            answer,
            fetches,
        }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().expect("answer") = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn mint(kid: Option<&str>, pem: &str, alg: Algorithm, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .expect("key");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// A person's claims as an identity provider sends them (`aud` an array).
fn person(sub: &str) -> Value {
    json!({
        "sub": sub, "iss": IDP, "aud": [AUDIENCE, "account"],
        "iat": now_secs(), "exp": now_secs() + 600,
    })
}

/// A projected service-account token's claims, as the API server mints them.
fn service_account(namespace: &str, name: &str, aud: &str) -> Value {
    json!({
        "aud": [aud],
        "exp": now_secs() + 3600,
        "iat": now_secs(),
        "nbf": now_secs(),
        "iss": CLUSTER_ISSUER,
        "jti": "9f1b7e0a-4c55-4a55-9d2e-1f0c8e3f7a10",
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "node-1", "uid": "7a3c1c6e-2b9f-4d84-8a2a-6f1f7c0b9d11"},
            "pod": {"name": format!("{name}-6d5f8c7b9-x2v4q"), "uid": "0b8f3e5c-95d4-4f60-9a3f-5c1d2e7b8a90"},
            "serviceaccount": {"name": name, "uid": "c4a8d1e2-6f3b-4a7c-8e9d-2b1f0a3c5d67"},
            "warnafter": now_secs() + 3000,
        },
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
    })
}

async fn status(app: &TestApp, method: Method, path: &str, token: &str) -> u16 {
    let mut req = app
        .http
        .request(method.clone(), format!("{}{path}", app.address))
        .bearer_auth(token);
    if method == Method::POST {
        req = req.json(&json!({"status": "done"}));
    }
    req.send().await.expect("send").status().as_u16()
}

async fn rooms(app: &TestApp, token: &str) -> u16 {
    status(app, Method::GET, "/v1/rooms", token).await
}

/// 404 for a caller allowed on the internal route (no such recording), 403 for
/// one that is not.
async fn internal(app: &TestApp, token: &str) -> u16 {
    let path = format!("/v1/internal/recordings/{}/status", uuid::Uuid::new_v4());
    status(app, Method::POST, &path, token).await
}

async fn operator(app: &TestApp, token: &str) -> u16 {
    status(app, Method::GET, "/v1/recordings?status=unmatched", token).await
}

async fn spawn_with_key_set(
    url: &str,
    customise: impl FnOnce(&mut room_api::RoomApiSettings),
) -> TestApp {
    let url = url.to_owned();
    spawn_app_with(move |s| {
        s.auth.auth_jwt_secret = None;
        s.auth.auth_jwks_url = Some(url);
        s.auth.auth_jwt_issuer = Some(IDP.to_owned());
        s.auth.auth_jwt_audience = Some(AUDIENCE.to_owned());
        s.auth.auth_jwks_refresh_seconds = 10;
        customise(s);
    })
    .await
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    app.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn keys_rotate_without_a_restart_and_the_last_good_set_outlives_an_outage() {
    let idp = KeySetServer::start(Answer::Keys(vec!["rsa-a"]), None);
    let app = spawn_with_key_set(&idp.url, |_| {}).await;
    let token_a = mint(Some("rsa-a"), RSA_A, Algorithm::RS256, &person("alice"));
    assert_eq!(rooms(&app, &token_a).await, 200);
    let loaded = idp.fetches();

    // The provider publishes its next keys (RS256 and ES256) before signing with
    // them: a token naming one is verified after a fetch, with no restart.
    idp.answer(Answer::Keys(vec!["rsa-a", "rsa-b", "ec-c"]));
    let token_b = mint(Some("rsa-b"), RSA_B, Algorithm::RS256, &person("bob"));
    assert_eq!(rooms(&app, &token_b).await, 200);
    assert!(idp.fetches() > loaded);
    let token_c = mint(Some("ec-c"), EC_C, Algorithm::ES256, &person("carol"));
    assert_eq!(rooms(&app, &token_c).await, 200, "ES256 from the same set");
    assert_eq!(rooms(&app, &token_a).await, 200, "the old key still works");

    // Made-up kids do not turn requests into fetches (at most one more: the
    // background refresh, every 10 s here, may fall in this window on a slow run).
    let before = idp.fetches();
    for n in 0..20 {
        let forged = mint(
            Some(&format!("made-up-{n}")),
            RSA_B,
            Algorithm::RS256,
            &person("mallory"),
        );
        assert_eq!(rooms(&app, &forged).await, 401);
    }
    assert!(
        idp.fetches() <= before + 1,
        "at most one fetch per {:?}",
        room_api::auth::MIN_REFETCH
    );

    // The provider fails: the background refresh (every 10 s here) fails, and the
    // last good set keeps verifying tokens; readiness is unaffected.
    idp.answer(Answer::Status(503));
    let before = idp.fetches();
    let deadline = Instant::now() + Duration::from_secs(25);
    while idp.fetches() == before {
        assert!(Instant::now() < deadline, "no background refresh");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rooms(&app, &token_b).await, 200);
    assert_eq!(rooms(&app, &token_c).await, 200);
    assert_eq!(app.readyz().await.0, 200);
    let failed = r#"roomapi_auth_key_set_loads_total{outcome="failed",source="AUTH_JWKS_URL"}"#;
    assert!(metric(&app, failed).await >= 1.0);
}

#[tokio::test]
async fn tokens_for_another_audience_issuer_or_algorithm_are_refused() {
    let idp = KeySetServer::start(Answer::Keys(vec!["rsa-a", "ec-c"]), None);
    let app = spawn_with_key_set(&idp.url, |_| {}).await;
    let ok = person("alice");
    let with = |key: &str, value: Value| {
        let mut claims = ok.clone();
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = ok.clone();
        claims.as_object_mut().map(|c| c.remove(key));
        claims
    };
    // HS256 signed with the public key as the secret: the classic confusion.
    let confused = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-a".to_owned());
        jsonwebtoken::encode(
            &header,
            &ok,
            &EncodingKey::from_secret(RSA_A_PUBLIC.as_bytes()).expect("key"),
        )
        .expect("sign")
    };
    let by_a = |claims: &Value| mint(Some("rsa-a"), RSA_A, Algorithm::RS256, claims);
    let cases = [
        (by_a(&with("aud", json!("account"))), "another audience"),
        (by_a(&without("aud")), "no audience"),
        (
            by_a(&with("iss", json!("https://evil.test"))),
            "another issuer",
        ),
        (by_a(&without("iss")), "no issuer"),
        (by_a(&with("nbf", json!(now_secs() + 600))), "not yet valid"),
        (
            mint(None, RSA_A, Algorithm::RS256, &ok),
            "no kid in a set of two",
        ),
        (
            mint(Some("ec-c"), RSA_A, Algorithm::RS256, &ok),
            "RS256 under an EC key's kid",
        ),
        (
            mint(Some("rsa-a"), RSA_B, Algorithm::RS256, &ok),
            "signed by another key",
        ),
        (confused, "HS256 with the public key"),
    ];
    for (token, case) in cases {
        assert_eq!(rooms(&app, &token).await, 401, "{case}");
    }
    let audience_string = with("aud", json!(AUDIENCE));
    assert_eq!(
        rooms(
            &app,
            &mint(Some("rsa-a"), RSA_A, Algorithm::RS256, &audience_string)
        )
        .await,
        200
    );
}

#[tokio::test]
async fn operators_and_services_are_recognised_by_a_claim_not_only_by_subject() {
    let idp = KeySetServer::start(Answer::Keys(vec!["rsa-a"]), None);
    let app = spawn_with_key_set(&idp.url, |s| {
        s.auth.auth_roles_claim = "realm_access.roles".to_owned();
        s.auth.auth_operator_role = Some("whereby-operator".to_owned());
        s.auth.auth_service_role = Some("whereby-pipeline".to_owned());
    })
    .await;
    let with_roles = |sub: &str, roles: Value| {
        let mut claims = person(sub);
        claims["realm_access"] = json!({ "roles": roles });
        mint(Some("rsa-a"), RSA_A, Algorithm::RS256, &claims)
    };
    let op = with_roles("dana", json!(["offline_access", "whereby-operator"]));
    let pipeline = with_roles("transcriber", json!(["whereby-pipeline"]));
    let plain = with_roles("erin", json!(["offline_access"]));
    // `ops-1` is in AUTH_OPERATOR_SUBJECTS: the list still grants, for tokens of
    // the configured issuer.
    let listed = with_roles("ops-1", json!([]));

    assert_eq!(operator(&app, &op).await, 200);
    assert_eq!(operator(&app, &listed).await, 200);
    assert_eq!(operator(&app, &pipeline).await, 403);
    assert_eq!(operator(&app, &plain).await, 403);
    assert_eq!(
        internal(&app, &pipeline).await,
        404,
        "a service: past the role check"
    );
    assert_eq!(internal(&app, &op).await, 403);
    assert_eq!(internal(&app, &plain).await, 403);
}

#[tokio::test]
async fn a_kubernetes_service_account_token_is_an_internal_service() {
    let idp = KeySetServer::start(Answer::Keys(vec!["rsa-a"]), None);
    let cluster = KeySetServer::start(Answer::Keys(vec!["cluster"]), Some(POD_TOKEN));
    let token_file = std::env::temp_dir().join(format!("sa-token-{}", uuid::Uuid::new_v4()));
    std::fs::write(&token_file, format!("{POD_TOKEN}\n")).expect("token file");
    let (cluster_url, path) = (cluster.url.clone(), token_file.display().to_string());
    let app = spawn_with_key_set(&idp.url, move |s| {
        s.auth.auth_service_account_issuer = Some(CLUSTER_ISSUER.to_owned());
        s.auth.auth_service_account_jwks_url = Some(cluster_url);
        s.auth.auth_service_account_jwks_token_file = Some(path);
        s.auth.auth_service_accounts =
            vec!["pipeline:transcriber".to_owned(), "tools:*".to_owned()];
    })
    .await;
    assert_eq!(app.readyz().await.0, 200);
    assert!(
        cluster.fetches() >= 1,
        "the cluster's key set was fetched with the pod's token"
    );

    let sa = |claims: &Value| mint(Some("cluster-1"), CLUSTER, Algorithm::RS256, claims);
    let transcriber = sa(&service_account("pipeline", "transcriber", "room-api"));
    assert_eq!(
        internal(&app, &transcriber).await,
        404,
        "a service: past the role check"
    );
    assert_eq!(
        operator(&app, &transcriber).await,
        403,
        "a service is no operator"
    );

    let tool = sa(&service_account("tools", "reporter", "room-api"));
    assert_eq!(
        internal(&app, &tool).await,
        404,
        "a namespace's accounts: tools:*"
    );
    // Any pod can mount a token for our audience: an account not listed is refused
    // everywhere, even where a person would be welcome.
    let stranger = sa(&service_account("tenant-a", "transcriber", "room-api"));
    assert_eq!(internal(&app, &stranger).await, 403);
    assert_eq!(rooms(&app, &stranger).await, 403);

    // The pod's default token has the API server's audience, not ours.
    let default_audience = sa(&service_account("pipeline", "transcriber", CLUSTER_ISSUER));
    assert_eq!(internal(&app, &default_audience).await, 401);
    // A person whose subject looks like a service account is still a person.
    let lookalike = mint(
        Some("rsa-a"),
        RSA_A,
        Algorithm::RS256,
        &person("system:serviceaccount:pipeline:transcriber"),
    );
    assert_eq!(internal(&app, &lookalike).await, 403);
    // The cluster's issuer with a key from the people's set: no such key there.
    let crossed = mint(
        Some("rsa-a"),
        RSA_A,
        Algorithm::RS256,
        &service_account("pipeline", "transcriber", "room-api"),
    );
    assert_eq!(internal(&app, &crossed).await, 401);
    let _ = std::fs::remove_file(token_file);
}

#[tokio::test]
async fn the_clusters_key_set_down_leaves_people_served_and_room_api_ready() {
    let idp = KeySetServer::start(Answer::Keys(vec!["rsa-a"]), None);
    let cluster = KeySetServer::start(Answer::Status(503), None);
    let cluster_url = cluster.url.clone();
    let app = spawn_with_key_set(&idp.url, move |s| {
        s.auth.auth_service_account_issuer = Some(CLUSTER_ISSUER.to_owned());
        s.auth.auth_service_account_jwks_url = Some(cluster_url);
        s.auth.auth_service_accounts = vec!["pipeline:transcriber".to_owned()];
    })
    .await;
    assert_eq!(
        app.readyz().await.0,
        200,
        "internal calls wait; people do not"
    );
    let token = mint(Some("rsa-a"), RSA_A, Algorithm::RS256, &person("alice"));
    assert_eq!(rooms(&app, &token).await, 200);
    let sa = mint(
        Some("cluster-1"),
        CLUSTER,
        Algorithm::RS256,
        &service_account("pipeline", "transcriber", "room-api"),
    );
    assert_eq!(
        internal(&app, &sa).await,
        401,
        "no key to verify it with yet"
    );
    let failed = r#"roomapi_auth_key_set_loads_total{outcome="failed",source="AUTH_SERVICE_ACCOUNT_JWKS_URL"}"#;
    assert!(metric(&app, failed).await >= 1.0);
}

#[tokio::test]
async fn room_api_is_not_ready_until_its_key_set_loads() {
    // A key set larger than the limit (256 KiB) is refused like an outage, although
    // it holds the right key.
    let idp = KeySetServer::start(Answer::Oversized(300 * 1024), None);
    let app = spawn_with_key_set(&idp.url, |_| {}).await;
    let (code, body) = app.readyz().await;
    assert_eq!(code, 503);
    assert_eq!(body["checks"]["auth_key_sets"], "down");
    let token = mint(Some("rsa-a"), RSA_A, Algorithm::RS256, &person("alice"));
    assert_eq!(rooms(&app, &token).await, 401);
    idp.answer(Answer::Status(503));
    assert_eq!(rooms(&app, &token).await, 401);

    idp.answer(Answer::Keys(vec!["rsa-a"]));
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.readyz().await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(rooms(&app, &token).await, 200);
}

#[test]
fn a_key_set_without_issuer_and_audience_is_refused_at_start_up() {
    use test_support::TestEnv;
    let env = TestEnv::new()
        .database_url("postgres://postgres@127.0.0.1:5432/unused")
        .set("WHEREBY_API_KEY", "k")
        .set("RECORDING_STORAGE_AWS_BUCKET_NAME", "b")
        .set("AWS_WHEREBY_ACCESS_KEY_ID", "i")
        .set("AWS_WHEREBY_ACCESS_KEY_SECRET", "s")
        .set("AUTH_JWKS_URL", "https://idp.example.test/jwks")
        .set("AUTH_SERVICE_ACCOUNT_ISSUER", CLUSTER_ISSUER);
    let err = room_api::RoomApiSettings::from_source(&env.source())
        .expect_err("incomplete identity settings")
        .to_string();
    for key in [
        "AUTH_JWT_ISSUER",
        "AUTH_JWT_AUDIENCE",
        "AUTH_SERVICE_ACCOUNT_JWKS_URL",
        "AUTH_SERVICE_ACCOUNTS",
    ] {
        assert!(err.contains(key), "{key} in: {err}");
    }
    // The pod's token is never sent over plain HTTP off this host; to it, it may.
    let with_token = |url: &str| {
        env.clone()
            .set("AUTH_JWT_ISSUER", IDP)
            .set("AUTH_JWT_AUDIENCE", AUDIENCE)
            .set("AUTH_SERVICE_ACCOUNT_JWKS_URL", url)
            .set("AUTH_SERVICE_ACCOUNTS", "pipeline:transcriber")
            .set(
                "AUTH_SERVICE_ACCOUNT_JWKS_TOKEN_FILE",
                "/var/run/secrets/token",
            )
            .source()
    };
    let err = room_api::RoomApiSettings::from_source(&with_token(
        "http://kubernetes.default.svc/openid/v1/jwks",
    ))
    .expect_err("a token over plain HTTP")
    .to_string();
    assert!(err.contains("must be https://"), "{err}");
    room_api::RoomApiSettings::from_source(&with_token("http://127.0.0.1:8001/openid/v1/jwks"))
        .expect("loopback is this host");
    room_api::RoomApiSettings::from_source(&with_token(
        "https://kubernetes.default.svc/openid/v1/jwks",
    ))
    .expect("https");
}

#[tokio::test]
async fn a_key_set_file_alone_or_beside_the_url_verifies_tokens() {
    let keys: Value = serde_json::from_str(KEYS).expect("fixture");
    let file = std::env::temp_dir().join(format!("jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, json!({ "keys": [keys["ec-c"]] }).to_string()).expect("file");
    let path = file.display().to_string();
    let token_a = mint(Some("rsa-a"), RSA_A, Algorithm::RS256, &person("alice"));
    let token_c = mint(Some("ec-c"), EC_C, Algorithm::ES256, &person("carol"));

    // The file alone.
    let only_file = path.clone();
    let app = spawn_with_key_set("http://unused.invalid/jwks", move |s| {
        s.auth.auth_jwks_url = None;
        s.auth.auth_jwks_file = Some(only_file);
    })
    .await;
    assert_eq!(app.readyz().await.0, 200);
    assert_eq!(rooms(&app, &token_c).await, 200);
    assert_eq!(rooms(&app, &token_a).await, 401);

    // Beside the URL: the keys of both.
    let idp = KeySetServer::start(Answer::Keys(vec!["rsa-a"]), None);
    let app = spawn_with_key_set(&idp.url, move |s| s.auth.auth_jwks_file = Some(path)).await;
    assert_eq!(rooms(&app, &token_a).await, 200);
    assert_eq!(rooms(&app, &token_c).await, 200);
    let _ = std::fs::remove_file(file);
}
