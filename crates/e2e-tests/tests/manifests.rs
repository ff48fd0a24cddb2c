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

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn render(overlay: &str) -> Vec<Value> {
    render_path(&format!("k8s/overlays/{overlay}"))
}

/// `kubectl kustomize` of a directory under the repository's root, as JSON.
fn render_path(path: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .args(["kustomize", &format!("{ROOT}/{path}")])
        .output()
        .expect("kubectl (installed by .ci/check-manifests) renders the overlay");
    assert!(
        out.status.success(),
        "kustomize {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_to_json(&out.stdout)
}

/// Every document of a YAML stream.
fn yaml_to_json(yaml: &[u8]) -> Vec<Value> {
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
        .write_all(yaml)
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

    let job = objects
        .iter()
        .find(|o| o["kind"] == "Job")
        .unwrap_or_else(|| panic!("{overlay}: the migration Job"));
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][0], "migrate");
    let source = Source::from_parts(None, environment(&objects, c)).expect("source");
    source
        .section::<settings::DatabaseSettings>()
        .expect("the Job has the database settings");

    // The edge (Ingress or HTTPRoutes): exactly the public routes, to the right
    // services.
    let mut routes = Vec::new();
    for route in objects.iter().filter(|o| o["kind"] == "HTTPRoute") {
        for rule in route["spec"]["rules"].as_array().into_iter().flatten() {
            for m in rule["matches"].as_array().into_iter().flatten() {
                routes.push((
                    m["path"]["value"].as_str().unwrap_or_default().to_owned(),
                    rule["backendRefs"][0]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
        }
    }
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

/// Every overlay under k8s/overlays, and whether it is marked as a template.
fn overlays() -> Vec<(String, bool)> {
    let mut found: Vec<(String, bool)> = std::fs::read_dir(format!("{ROOT}/k8s/overlays"))
        .expect("k8s/overlays")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("kustomization.yaml").exists())
        .map(|e| {
            let template = e.path().join("TEMPLATE.md").exists();
            (e.file_name().to_string_lossy().into_owned(), template)
        })
        .collect();
    found.sort();
    assert!(found.len() >= 3, "{found:?}");
    found
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

const RECOMMENDED: [&str; 6] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
];

#[test]
fn every_object_and_pod_carries_the_recommended_labels_and_one_release() {
    for (overlay, _) in overlays() {
        let objects = render(&overlay);
        let mut versions = std::collections::BTreeSet::new();
        for o in &objects {
            let what = format!("{overlay}: {}/{}", o["kind"], o["metadata"]["name"]);
            for key in RECOMMENDED {
                assert!(
                    label(o, key).is_some_and(|v| !v.is_empty()),
                    "{what} lacks {key}"
                );
            }
            versions.extend(label(o, "app.kubernetes.io/version"));
            let template = &o["spec"]["template"];
            if template.is_object() {
                for key in RECOMMENDED {
                    assert!(
                        label(template, key).is_some(),
                        "{what}: its pods lack {key}"
                    );
                }
            }
        }
        assert_eq!(
            versions.len(),
            1,
            "{overlay}: one release, not {versions:?}"
        );
        // The migration Job is named after the release, so that the next release
        // creates a new Job rather than patching this one's immutable template.
        let version = versions.first().expect("a version");
        let jobs: Vec<_> = objects.iter().filter(|o| o["kind"] == "Job").collect();
        assert_eq!(jobs.len(), 1, "{overlay}: one migration Job");
        assert_eq!(
            jobs[0]["metadata"]["name"],
            format!("whereby-migrate-v{version}"),
            "{overlay}"
        );
    }
}

#[test]
fn placeholders_are_refused_in_every_overlay_not_marked_as_a_template() {
    for (overlay, template) in overlays() {
        // In any case: names that must be DNS labels or image references are
        // lower-case placeholders.
        let rendered = serde_json::to_string(&render(&overlay))
            .expect("json")
            .to_lowercase();
        let placeholders = rendered.matches("placeholder").count();
        if template {
            // The check can see them: a template without any would not need marking.
            assert!(
                placeholders > 0,
                "{overlay} is marked as a template but has no placeholder"
            );
        } else {
            assert_eq!(
                placeholders, 0,
                "{overlay}: PLACEHOLDER values left (or mark it with TEMPLATE.md)"
            );
        }
    }
}

#[test]
fn production_pins_its_image_by_digest_and_the_base_owns_no_namespace() {
    for overlay in ["production", "production-operators"] {
        for o in render(overlay) {
            let pods = &o["spec"]["template"]["spec"];
            for c in pods["containers"].as_array().into_iter().flatten() {
                let image = c["image"].as_str().unwrap_or_default();
                let digest = image.rsplit_once("@sha256:").map(|(_, d)| d).unwrap_or("");
                assert!(
                    digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{overlay}: {image} is not pinned by digest"
                );
            }
            assert_ne!(
                o["kind"], "Namespace",
                "{overlay}: platform teams own namespaces"
            );
        }
    }
    assert!(
        render_path("k8s/base")
            .iter()
            .all(|o| o["kind"] != "Namespace")
    );
}

/// The edge exposes the public routes only, whichever edge an overlay uses.
#[test]
fn the_gateway_routes_expose_only_the_public_routes() {
    let public = [
        ("PathPrefix", "/v1/whereby", "webhook-ingest", 8081),
        ("PathPrefix", "/v1/rooms", "room-api", 8080),
        ("PathPrefix", "/v1/meetings", "room-api", 8080),
        ("PathPrefix", "/v1/recordings", "room-api", 8080),
        ("Exact", "/v1/openapi.json", "room-api", 8080),
    ];
    for overlay in ["production", "production-operators"] {
        let objects = render(overlay);
        let mut seen = Vec::new();
        for route in objects.iter().filter(|o| o["kind"] == "HTTPRoute") {
            assert!(
                route["spec"]["parentRefs"][0]["name"].is_string(),
                "{overlay}: parentRefs"
            );
            for rule in route["spec"]["rules"].as_array().expect("rules") {
                let backend = &rule["backendRefs"][0];
                for m in rule["matches"].as_array().expect("matches") {
                    let found = (
                        m["path"]["type"].as_str().unwrap_or(""),
                        m["path"]["value"].as_str().unwrap_or(""),
                        backend["name"].as_str().unwrap_or(""),
                        backend["port"].as_u64().unwrap_or(0),
                    );
                    assert!(
                        public.contains(&found),
                        "{overlay}: {found:?} is not a public route"
                    );
                    seen.push(found);
                }
            }
            // The backend port is the Service's.
            let svc = find(
                &objects,
                "Service",
                route["metadata"]["name"].as_str().expect("name"),
            );
            assert_eq!(
                svc["spec"]["ports"][0]["port"],
                route["spec"]["rules"][0]["backendRefs"][0]["port"]
            );
        }
        seen.sort();
        let mut all = public.to_vec();
        all.sort();
        assert_eq!(seen, all, "{overlay}: every public route, once");
        assert!(
            objects.iter().all(|o| o["kind"] != "Ingress"),
            "{overlay}: one edge"
        );
    }
    // The ingress-nginx component replaces the routes (dev uses it).
    let dev = render("dev");
    assert!(dev.iter().all(|o| o["kind"] != "HTTPRoute"));
    assert!(dev.iter().any(|o| o["kind"] == "Ingress"));
    let policy = find(&dev, "NetworkPolicy", "webhook-ingest");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
}

/// GitOps: Flux applies the migration before the services, Argo CD runs it as a
/// Sync hook between what it needs and the services; each path renders, and the two halves make the whole overlay.
#[test]
fn gitops_tools_run_the_migration_before_the_services() {
    let flux =
        yaml_to_json(&std::fs::read(format!("{ROOT}/k8s/gitops/flux/whereby.yaml")).expect("flux"));
    let path = |k: &Value| {
        k["spec"]["path"]
            .as_str()
            .expect("path")
            .trim_start_matches("./")
            .to_owned()
    };
    let by_name = |name: &str| {
        flux.iter()
            .find(|k| k["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("Flux Kustomization {name}"))
    };
    let (migration, services) = (by_name("whereby-migration"), by_name("whereby"));
    assert_eq!(
        services["spec"]["dependsOn"][0]["name"],
        "whereby-migration"
    );
    assert_eq!(
        migration["spec"]["wait"], true,
        "Ready means the Job completed"
    );
    let first = render_path(&path(migration));
    let then = render_path(&path(services));
    assert!(first.iter().any(|o| o["kind"] == "Job"));
    assert!(first.iter().all(|o| o["kind"] != "Deployment"));
    assert!(then.iter().all(|o| o["kind"] != "Job"));
    assert!(then.iter().any(|o| o["kind"] == "Deployment"));
    let whole = render("production");
    assert_eq!(
        first.len() + then.len(),
        whole.len(),
        "the halves make the overlay"
    );

    let argo = yaml_to_json(
        &std::fs::read(format!("{ROOT}/k8s/gitops/argocd/application.yaml")).expect("argo"),
    );
    assert_eq!(argo[0]["spec"]["source"]["path"], "k8s/overlays/production");
    // Argo CD applies by waves: what the Job needs, then the Job (a hook it waits
    // for), then the services. On a first sync nothing else exists yet.
    for overlay in ["production", "production-operators"] {
        let objects = render(overlay);
        let wave = |o: &Value| -> i64 {
            o["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
                .as_str()
                .map_or(0, |w| w.parse().expect("a wave is a number"))
        };
        let job = objects
            .iter()
            .find(|o| o["kind"] == "Job")
            .expect("the Job");
        let annotations = &job["metadata"]["annotations"];
        assert_eq!(annotations["argocd.argoproj.io/hook"], "Sync");
        assert_eq!(
            annotations["argocd.argoproj.io/hook-delete-policy"],
            "BeforeHookCreation"
        );
        let pod = &job["spec"]["template"]["spec"];
        let account = find(
            &objects,
            "ServiceAccount",
            pod["serviceAccountName"].as_str().expect("sa"),
        );
        assert!(
            wave(account) < wave(job),
            "{overlay}: the Job's ServiceAccount first"
        );
        let policy = find(&objects, "NetworkPolicy", "whereby-migrate");
        assert!(
            wave(policy) < wave(job),
            "{overlay}: its NetworkPolicy first"
        );
        let egress = serde_json::to_string(&policy["spec"]["egress"]).expect("json");
        assert!(
            egress.contains("\"port\":53"),
            "{overlay}: the Job resolves names on its own"
        );
        // Whatever makes its Secret (External Secrets, CloudNativePG) comes first too.
        for kind in ["ExternalSecret", "Cluster"] {
            for o in objects.iter().filter(|o| o["kind"] == kind) {
                assert!(wave(o) < wave(job), "{overlay}: {kind} before the Job");
            }
        }
        for o in objects.iter().filter(|o| o["kind"] == "Deployment") {
            assert!(wave(o) > wave(job), "{overlay}: the services after the Job");
        }
    }
    let objects = render("production");
    let job = objects
        .iter()
        .find(|o| o["kind"] == "Job")
        .expect("the Job");
    // It gets what `room-api migrate` reads and nothing else.
    let env: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(env, ["DATABASE_URL", "LOG_FORMAT", "LOG_LEVEL"]);
    assert!(job["spec"]["template"]["spec"]["containers"][0]["envFrom"].is_null());
}
