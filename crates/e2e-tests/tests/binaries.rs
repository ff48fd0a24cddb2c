//! What a new user meets first: every binary explains itself with `--help`, a
//! settings mistake is one line naming every key at once (no backtrace, even with
//! `RUST_BACKTRACE` set), `dev-token` needs only the JWT settings, and every key a
//! service reads is documented.
//!
//! Needs the binaries built (`make test` builds them first).

use std::process::{Command, Output};

const BINARIES: [&str; 6] = [
    "room-api",
    "webhook-ingest",
    "recording-worker",
    "whereby-ops",
    "whereby-stand-in",
    "whereby-bench",
];

/// Runs a binary with exactly `env` (plus PATH), in an empty directory so no
/// `.env` is read.
fn run(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!("whereby-bin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = Command::new(whereby_bench::procs::bin_dir().join(binary))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("run {binary} (built? `make test` builds them): {e}"));
    std::fs::remove_dir_all(dir).ok();
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_binary_has_help_that_names_its_settings_and_exits_0() {
    for binary in BINARIES {
        let out = run(binary, &["--help"], &[]);
        let help = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{binary} --help: {help}");
        assert!(help.contains("Usage:"), "{binary}: {help}");
        assert!(
            help.contains("docs/"),
            "{binary} says where its settings are documented: {help}"
        );
        assert!(
            !help.contains("\\\n"),
            "{binary}: a stray backslash: {help}"
        );
    }
    let ops = text(&run("whereby-ops", &["--help"], &[]).stdout);
    for command in [
        "doctor",
        "webhook",
        "dlq",
        "events",
        "erase",
        "recordings",
        "migrate",
    ] {
        assert!(ops.contains(command), "whereby-ops lists {command}: {ops}");
    }
    assert!(ops.contains("DATABASE_URL") && ops.contains("WHEREBY_WEBHOOK_SECRET"));
    let room_api = text(&run("room-api", &["--help"], &[]).stdout);
    for key in ["dev-token", "migrate", "WHEREBY_API_KEY", "AUTH_JWT_SECRET"] {
        assert!(
            room_api.contains(key),
            "room-api --help names {key}: {room_api}"
        );
    }
    // A usage mistake is exit 2 with the usage, as everywhere else.
    let out = run("whereby-ops", &["dlq", "replay", "--secret", "x"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn a_settings_error_is_one_line_naming_every_key_without_a_backtrace() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "room-api",
            &[
                "WHEREBY_API_KEY is missing",
                "RECORDING_STORAGE_AWS_BUCKET_NAME is missing",
                "AWS_WHEREBY_ACCESS_KEY_ID is missing",
                "AWS_WHEREBY_ACCESS_KEY_SECRET is missing",
                "DATABASE_POOL_SIZE is not valid",
                "ROOM_API_REQUEST_TIMEOUT_SECONDS must be between",
                "BRANDING_DEFAULT_PRIMARY_COLOR must be #rrggbb",
                "BRANDING_DEFAULT_BACKGROUND must be palette/theme",
            ],
        ),
        (
            "webhook-ingest",
            &[
                "WHEREBY_WEBHOOK_SECRET is missing",
                "DATABASE_POOL_SIZE",
                "ROOM_API_REQUEST_TIMEOUT_SECONDS",
            ],
        ),
        (
            "recording-worker",
            &[
                "WHEREBY_API_KEY is missing",
                "DATABASE_POOL_SIZE is not valid",
            ],
        ),
    ];
    for (binary, expected) in cases {
        let out = run(
            binary,
            &[],
            &[
                ("RUST_BACKTRACE", "1"),
                ("DATABASE_POOL_SIZE", "lots"),
                ("ROOM_API_REQUEST_TIMEOUT_SECONDS", "0"),
                ("BRANDING_DEFAULT_PRIMARY_COLOR", "red"),
                ("BRANDING_DEFAULT_BACKGROUND", "nowhere"),
            ],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{binary}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{binary}: {stderr}");
        // A missing key also fails the checks that read its placeholder: named once.
        for key in ["WHEREBY_WEBHOOK_SECRET", "WHEREBY_API_KEY"] {
            assert!(
                stderr.matches(key).count() <= 1,
                "{binary}: {key} twice: {stderr}"
            );
        }
        assert!(!stderr.contains("backtrace"), "{binary}: {stderr}");
        for (i, part) in expected.iter().enumerate() {
            // Ingest reads neither the database nor room-api's settings: the
            // expectations after the first name what it must not complain about.
            let named = stderr.contains(part);
            if binary == "webhook-ingest" && i > 0 {
                assert!(!named, "{binary} does not read {part}: {stderr}");
            } else {
                assert!(named, "{binary} names {part:?}: {stderr}");
            }
        }
    }
}

#[test]
fn dev_token_needs_only_the_jwt_settings() {
    let out = run(
        "room-api",
        &["dev-token", "bob"],
        &[("AUTH_JWT_SECRET", "a-local-secret-long-enough-0123456789")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    let out = run("room-api", &["dev-token", "bob"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("AUTH_JWT_SECRET"));
}

#[test]
fn every_key_a_service_reads_is_documented() {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
    )
    .expect("docs/configuration.md");
    // Keys documented as a family (`DATABASE_*`) count for each member.
    let documented = |key: &str| {
        docs.contains(&format!("`{key}`"))
            || key
                .match_indices('_')
                .any(|(i, _)| docs.contains(&format!("`{}_*`", &key[..i])))
    };
    let keys = [
        room_api::RoomApiSettings::keys(),
        webhook_ingest::IngestSettings::keys(),
        recording_worker::WorkerSettings::keys(),
    ]
    .concat();
    assert!(keys.len() > 60, "the probe finds the keys: {keys:?}");
    let missing: Vec<&String> = keys.iter().filter(|k| !documented(k)).collect();
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}
