//! The Kubernetes manifests agree with the code: every overlay, rendered with
//! `kubectl kustomize`, gives each service an environment its settings load from
//! (nothing required is missing), listens where the Deployment and the Service say,
//! probes routes the services serve, and exposes through the ingress only the public
//! routes.

use std::{
    collections::HashMap,
    io::Write,
    process::{Command, Stdio},
};

use serde_json::Value;
use settings::Source;

fn render(overlay: &str) -> Vec<Value> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new("kubectl")
        .args(["kustomize", &format!("{root}/k8s/overlays/{overlay}")])
        .output()
        .expect("kubectl (installed by .ci/check-manifests) renders the overlay");
    assert!(
        out.status.success(),
        "kustomize {overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // YAML to JSON with PyYAML (installed with moto), to keep a YAML crate out.
    let mut py = Command::new("python3")
        .args(["-c", "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    py.stdin
        .take()
        .expect("stdin")
        .write_all(&out.stdout)
        .expect("write");
    let json = py.wait_with_output().expect("python3 output");
    serde_json::from_slice(&json.stdout).expect("rendered manifests as JSON")
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} missing"))
}

/// The environment a container gets: its ConfigMaps (envFrom) and env entries;
/// secret values are placeholders (their presence is what matters).
fn environment(objects: &[Value], container: &Value) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        if let Some(name) = from["configMapRef"]["name"].as_str() {
            let cm = find(objects, "ConfigMap", name);
            for (k, v) in cm["data"].as_object().into_iter().flatten() {
                env.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
            }
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().expect("env name").to_owned();
        // Secrets are not in the manifests: a placeholder of the right shape.
        let value = match (e["value"].as_str(), name.as_str()) {
            (Some(v), _) => v.to_owned(),
            (None, "AMQP_URL") => "amqp://whereby:placeholder@rabbitmq:5672/%2f".to_owned(),
            (None, "DATABASE_URL") => {
                "postgres://whereby:placeholder@postgres:5432/whereby".to_owned()
            }
            (None, _) => format!("placeholder-secret-value-long-enough-for-every-check-{name}"),
        };
        env.insert(name, value);
    }
    env
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

fn check_service(objects: &[Value], name: &str, port: u64) {
    let c = container(find(objects, "Deployment", name));
    assert_eq!(
        c["ports"][0]["containerPort"], port,
        "{name}: containerPort"
    );
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let path = c[probe]["httpGet"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {probe}"));
        // Routes every service serves (tests call them): cheap liveness, real readiness.
        let expected = if probe == "readinessProbe" {
            "/readyz"
        } else {
            "/healthz"
        };
        assert_eq!(path, expected, "{name}: {probe}");
        let probe_port = &c[probe]["httpGet"]["port"];
        assert!(
            probe_port == "http" || *probe_port == port,
            "{name}: {probe} port"
        );
    }
    let svc = find(objects, "Service", name);
    let svc_port = &svc["spec"]["ports"][0];
    assert!(
        svc_port["targetPort"] == "http" || svc_port["targetPort"] == port,
        "{name}: Service targetPort"
    );
}

fn check_overlay(overlay: &str) {
    let objects = render(overlay);

    let env = environment(
        &objects,
        container(find(&objects, "Deployment", "room-api")),
    );
    let source = Source::from_parts(None, env).expect("source");
    let s = room_api::RoomApiSettings::from_source(&source)
        .unwrap_or_else(|e| panic!("{overlay}: room-api settings: {e}"));
    check_service(&objects, "room-api", port_of(&s.http.room_api_addr));

    let env = environment(
        &objects,
        container(find(&objects, "Deployment", "webhook-ingest")),
    );
    let source = Source::from_parts(None, env).expect("source");
    let s = webhook_ingest::IngestSettings::from_source(&source)
        .unwrap_or_else(|e| panic!("{overlay}: ingest settings: {e}"));
    check_service(
        &objects,
        "webhook-ingest",
        port_of(&s.http.webhook_ingest_addr),
    );

    let env = environment(
        &objects,
        container(find(&objects, "Deployment", "recording-worker")),
    );
    let source = Source::from_parts(None, env).expect("source");
    let s = recording_worker::WorkerSettings::from_source(&source)
        .unwrap_or_else(|e| panic!("{overlay}: worker settings: {e}"));
    check_service(&objects, "recording-worker", port_of(&s.worker.worker_addr));
    assert!(
        s.recordings.aws_process_recording_queue_url.is_some(),
        "{overlay}: the worker polls SQS"
    );

    let job = find(&objects, "Job", "whereby-migrate");
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][0], "migrate");
    let source = Source::from_parts(None, environment(&objects, c)).expect("source");
    source
        .section::<settings::DatabaseSettings>()
        .expect("the Job has the database settings");

    // The ingress: exactly the public routes, to the right services.
    let mut routes = Vec::new();
    for ingress in objects.iter().filter(|o| o["kind"] == "Ingress") {
        for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
            for p in rule["http"]["paths"].as_array().into_iter().flatten() {
                routes.push((
                    p["path"].as_str().unwrap_or_default().to_owned(),
                    p["backend"]["service"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
        }
    }
    routes.sort();
    let expected = [
        ("/v1/meetings", "room-api"),
        ("/v1/openapi.json", "room-api"),
        ("/v1/recordings", "room-api"),
        ("/v1/rooms", "room-api"),
        ("/v1/whereby", "webhook-ingest"),
    ];
    assert_eq!(
        routes,
        expected
            .iter()
            .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
            .collect::<Vec<_>>(),
        "{overlay}: public routes (never /metrics, /healthz, /readyz, /v1/internal, /admin)"
    );
}

#[test]
fn the_dev_overlay_agrees_with_the_code() {
    check_overlay("dev");
}

#[test]
fn the_production_overlay_agrees_with_the_code() {
    check_overlay("production");
}

#[test]
fn production_verifies_tokens_with_key_sets_and_no_shared_secret() {
    for overlay in ["production", "production-operators"] {
        let objects = render(overlay);
        let env = environment(
            &objects,
            container(find(&objects, "Deployment", "room-api")),
        );
        let source = Source::from_parts(None, env.clone()).expect("source");
        let s = room_api::RoomApiSettings::from_source(&source).expect("settings");
        assert!(
            !env.contains_key("AUTH_JWT_SECRET"),
            "{overlay}: no HS256 secret"
        );
        assert!(s.auth.uses_jwks(), "{overlay}: a key set");
        assert!(
            s.auth.auth_jwt_issuer.is_some() && s.auth.auth_jwt_audience.is_some(),
            "{overlay}: iss and aud"
        );
        assert!(s.auth.auth_service_account_issuer.is_some(), "{overlay}");
        assert!(
            s.access.auth_service_subjects.is_empty(),
            "{overlay}: roles, not lists"
        );
    }
}

#[test]
fn the_operators_overlay_agrees_with_the_code() {
    check_overlay("production-operators");
}

/// Replicas at most × pool size, summed over every process that opens a pool, must
/// stay inside what the database accepts (`max_connections` less the superuser's
/// reserve): a scale-up must never turn into "too many connections".
#[test]
fn the_pools_fit_the_databases_connection_budget() {
    let objects = render("production-operators");
    let cluster = find(&objects, "Cluster", "whereby-db");
    let parameter = |name: &str| -> u64 {
        cluster["spec"]["postgresql"]["parameters"][name]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("the Cluster sets {name}"))
    };
    let budget = parameter("max_connections") - parameter("superuser_reserved_connections");
    let pool_size = |deployment: &str| -> u64 {
        let env = environment(
            &objects,
            container(find(&objects, "Deployment", deployment)),
        );
        let source = Source::from_parts(None, env).expect("source");
        source
            .section::<settings::DatabaseSettings>()
            .expect("database settings")
            .database_pool_size as u64
    };
    let hpa_max = |name: &str| -> u64 {
        find(&objects, "HorizontalPodAutoscaler", name)["spec"]["maxReplicas"]
            .as_u64()
            .expect("maxReplicas")
    };
    let keda_max = find(&objects, "ScaledObject", "recording-worker")["spec"]["maxReplicaCount"]
        .as_u64()
        .expect("maxReplicaCount");
    // The migration Job holds one connection; CloudNativePG's own (replication,
    // monitoring) use the superuser reserve and a few more: keep 10 spare.
    let used =
        hpa_max("room-api") * pool_size("room-api") + keda_max * pool_size("recording-worker") + 1;
    assert!(
        used + 10 <= budget,
        "pools at full scale need {used} connections (+10 spare), the database allows {budget}"
    );
    // webhook-ingest never connects to Postgres.
    let ingest = environment(
        &objects,
        container(find(&objects, "Deployment", "webhook-ingest")),
    );
    assert!(!ingest.contains_key("DATABASE_URL"));
}

/// KEDA watches the queue the worker consumes (its name follows `AMQP_PREFIX`).
#[test]
fn keda_scales_the_worker_on_the_queue_it_consumes() {
    let objects = render("production-operators");
    let env = environment(
        &objects,
        container(find(&objects, "Deployment", "recording-worker")),
    );
    let source = Source::from_parts(None, env).expect("source");
    let s = recording_worker::WorkerSettings::from_source(&source).expect("worker settings");
    let topology = messaging::Topology::from_settings(&s.amqp);
    let triggers = find(&objects, "ScaledObject", "recording-worker")["spec"]["triggers"]
        .as_array()
        .expect("triggers")
        .clone();
    let rabbit = triggers
        .iter()
        .find(|t| t["type"] == "rabbitmq")
        .expect("a RabbitMQ trigger");
    assert_eq!(rabbit["metadata"]["queueName"], topology.worker_queue());
    assert_eq!(rabbit["metadata"]["hostFromEnv"], "AMQP_URL");
    assert!(
        triggers.iter().any(|t| t["type"] == "aws-sqs-queue"),
        "and one on the recordings' SQS queue"
    );
}
