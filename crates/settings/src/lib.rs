//! Settings shared by the services, read from (lowest priority first) built-in
//! defaults, an optional TOML file (`SETTINGS_FILE`), a `.env` file in the working
//! directory, and the process environment.
//!
//! Every key is the environment variable's name in lower case, so the names of the
//! Whereby guide (`WHEREBY_API_KEY`, `RECORDING_STORAGE_AWS_BUCKET_NAME`, ...) work
//! as written, in the environment, in `.env` and in the file alike. Each section is
//! deserialised from the same flat source; docs/configuration.md lists every key.
//!
//! A service reads all its sections through one [`Reader`], which gathers every
//! missing or invalid key (and every failed range check) so that one error names
//! them all, instead of one per attempt.

use std::{collections::HashMap, fmt, path::Path};

use secrecy::SecretString;
use serde::{Deserialize, de::DeserializeOwned};

pub use secrecy::ExposeSecret;

mod lists;
mod reader;
pub use lists::{comma_list, millis_list, secret_list};
pub use reader::{Reader, keys_of};

/// Where every setting is documented; named by every settings error.
pub const DOCUMENTED_IN: &str = "docs/configuration.md";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("invalid settings: {} (see {DOCUMENTED_IN})", Problems(.0))]
    Invalid(Vec<Problem>),
}

impl SettingsError {
    /// One problem with one key (`key` as the environment variable's name).
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Problem::new(key, message)])
    }

    /// The keys this error names (empty for a file error).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Self::File { .. } => Vec::new(),
            Self::Invalid(problems) => problems.iter().map(|p| p.key.as_str()).collect(),
        }
    }
}

/// What is wrong with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The environment variable's name (upper case).
    pub key: String,
    /// Reads after the key: "is missing", "must be between 1 and 10 (is 0)".
    pub message: String,
}

impl Problem {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_ascii_uppercase(),
            message: message.into(),
        }
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", p.key, p.message)?;
        }
        Ok(())
    }
}

/// Collects the problems of a section's start-up checks, so one error names them all.
#[derive(Debug, Default)]
pub struct Checks(Vec<Problem>);

impl Checks {
    /// `value` within `range`.
    pub fn range(&mut self, key: &str, value: u64, range: std::ops::RangeInclusive<u64>) {
        self.add(check_range(key, value, range));
    }

    /// `holds`, or the problem `message` with `key`.
    pub fn require(&mut self, holds: bool, key: &str, message: impl Into<String>) {
        if !holds {
            self.0.push(Problem::new(key, message));
        }
    }

    /// The problems of another check, if it failed.
    pub fn add(&mut self, result: Result<(), SettingsError>) {
        match result {
            Ok(()) => {}
            Err(SettingsError::Invalid(problems)) => self.0.extend(problems),
            Err(SettingsError::File { path, message }) => self
                .0
                .push(Problem::new("SETTINGS_FILE", format!("{path}: {message}"))),
        }
    }

    pub fn done(self) -> Result<(), SettingsError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Invalid(self.0))
        }
    }
}

/// The merged key/value source that sections are read from.
pub struct Source {
    /// Every key (lower case) with its value.
    table: HashMap<String, config::Value>,
}

impl Source {
    /// Reads the real sources: `SETTINGS_FILE`, `./.env`, the environment.
    pub fn load() -> Result<Self, SettingsError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_parts(Some(Path::new(".env")), env)
    }

    /// Builds the source from a `.env` path (ignored when absent) and an explicit
    /// environment, so that loading can be tested without touching the process.
    pub fn from_parts(
        dotenv: Option<&Path>,
        env: HashMap<String, String>,
    ) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder();
        let settings_file = env.get("SETTINGS_FILE").filter(|f| !f.is_empty()).cloned();
        if let Some(file) = &settings_file {
            builder = builder.add_source(config::File::new(file, config::FileFormat::Toml));
        }
        if let Some(path) = dotenv.filter(|p| p.exists()) {
            let vars = dotenvy::from_path_iter(path)
                .and_then(|iter| iter.collect::<Result<HashMap<_, _>, _>>())
                .map_err(|e| SettingsError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
            builder = builder.add_source(environment(vars));
        }
        let config =
            builder
                .add_source(environment(env))
                .build()
                .map_err(|e| SettingsError::File {
                    path: settings_file.unwrap_or_else(|| "the environment".to_owned()),
                    message: e.to_string(),
                })?;
        let table = config.try_deserialize().map_err(|e| SettingsError::File {
            path: "the settings".to_owned(),
            message: e.to_string(),
        })?;
        Ok(Self { table })
    }

    /// One raw value by its key (the variable's name in lower case), if set and
    /// not empty.
    pub fn get(&self, key: &str) -> Option<String> {
        self.table
            .get(key)
            .and_then(|v| v.clone().into_string().ok())
            .filter(|v| !v.trim().is_empty())
    }

    /// A reader that gathers the problems of several sections into one error.
    pub fn reader(&self) -> Reader<'_> {
        Reader::new(&self.table)
    }

    /// Reads one section. Missing keys take the section's defaults; every missing
    /// key without a default and every value of the wrong type is named in the error.
    pub fn section<T: DeserializeOwned>(&self) -> Result<T, SettingsError> {
        let mut reader = self.reader();
        let section = reader.section()?;
        reader.finish()?;
        Ok(section)
    }
}

/// The settings part of a program's `--help`: every key it reads, wrapped, and
/// where they are documented.
pub fn help_text(keys: &[String]) -> String {
    let mut text =
        String::from("Settings (environment variables, or a .env file, or SETTINGS_FILE):\n");
    let mut line = String::from(" ");
    for key in keys {
        if line.len() + key.len() > 78 {
            text.push_str(&line);
            text.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(key);
    }
    text.push_str(&line);
    text.push_str(&format!(
        "\nEach is described, with its default, in {DOCUMENTED_IN}."
    ));
    text
}

/// The settings, or, when they are wrong, one line on stderr naming every
/// problem and exit code 2: a settings mistake needs no backtrace.
#[allow(clippy::print_stderr, reason = "the error is the program's last word")]
pub fn or_exit<T>(program: &str, result: Result<T, SettingsError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::exit(2)
        }
    }
}

fn environment(vars: HashMap<String, String>) -> config::Environment {
    config::Environment::default()
        .source(Some(vars))
        // Values stay strings until a section asks for a type: a secret of digits
        // only ("0123") must not become the number 123.
        .try_parsing(false)
}

fn default_database_url() -> SecretString {
    SecretString::from("postgres://postgres@127.0.0.1:5432/whereby")
}
const fn default_pool_size() -> usize {
    10
}
const fn default_five() -> u64 {
    5
}
const fn default_true() -> bool {
    true
}

/// Postgres: `DATABASE_URL` and the pool.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    #[serde(default = "default_database_url")]
    pub database_url: SecretString,
    #[serde(default = "default_pool_size")]
    pub database_pool_size: usize,
    /// Seconds a request waits for a pooled connection, and for a new one to open.
    #[serde(default = "default_five")]
    pub database_timeout_seconds: u64,
    /// Apply pending migrations when the service starts (under an advisory lock).
    #[serde(default = "default_true")]
    pub database_migrate_on_start: bool,
    /// `statement_timeout` of every pooled session, in milliseconds.
    #[serde(default = "default_statement_timeout_ms")]
    pub database_statement_timeout_ms: u64,
    /// `lock_timeout` of every pooled session, in milliseconds.
    #[serde(default = "default_lock_timeout_ms")]
    pub database_lock_timeout_ms: u64,
    /// `idle_in_transaction_session_timeout` of every pooled session, in milliseconds.
    #[serde(default = "default_idle_in_transaction_ms")]
    pub database_idle_in_transaction_timeout_ms: u64,
    /// Seconds after which a connection whose peer stopped answering fails (TCP
    /// keepalive and `TCP_USER_TIMEOUT`).
    #[serde(default = "default_tcp_timeout")]
    pub database_tcp_timeout_seconds: u64,
}

const fn default_statement_timeout_ms() -> u64 {
    10_000
}
const fn default_lock_timeout_ms() -> u64 {
    5_000
}
const fn default_idle_in_transaction_ms() -> u64 {
    15_000
}
const fn default_tcp_timeout() -> u64 {
    10
}

/// `value` within `range`, or an error naming the setting.
pub fn check_range(
    name: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<(), SettingsError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(SettingsError::invalid(
            name,
            format!(
                "must be between {} and {} (is {value})",
                range.start(),
                range.end()
            ),
        ))
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            database_url: default_database_url(),
            database_pool_size: default_pool_size(),
            database_timeout_seconds: default_five(),
            database_migrate_on_start: default_true(),
            database_statement_timeout_ms: default_statement_timeout_ms(),
            database_lock_timeout_ms: default_lock_timeout_ms(),
            database_idle_in_transaction_timeout_ms: default_idle_in_transaction_ms(),
            database_tcp_timeout_seconds: default_tcp_timeout(),
        }
    }
}

impl DatabaseSettings {
    /// The longest a unit of work (a pool wait, a few statements and a commit)
    /// should take: beyond it the database is taken as unavailable. Twice the
    /// statement timeout plus the pool wait.
    pub fn apply_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.database_statement_timeout_ms.saturating_mul(2))
            + std::time::Duration::from_secs(self.database_timeout_seconds)
    }

    /// Range checks, at start-up: a zero timeout would mean "none" to Postgres.
    pub fn check(&self) -> Result<(), SettingsError> {
        let mut checks = Checks::default();
        checks.range(
            "DATABASE_POOL_SIZE",
            self.database_pool_size as u64,
            1..=1000,
        );
        checks.range(
            "DATABASE_TIMEOUT_SECONDS",
            self.database_timeout_seconds,
            1..=300,
        );
        checks.range(
            "DATABASE_STATEMENT_TIMEOUT_MS",
            self.database_statement_timeout_ms,
            100..=3_600_000,
        );
        checks.range(
            "DATABASE_LOCK_TIMEOUT_MS",
            self.database_lock_timeout_ms,
            100..=3_600_000,
        );
        checks.range(
            "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
            self.database_idle_in_transaction_timeout_ms,
            1_000..=3_600_000,
        );
        checks.range(
            "DATABASE_TCP_TIMEOUT_SECONDS",
            self.database_tcp_timeout_seconds,
            2..=600,
        );
        checks.done()
    }
}

fn default_whereby_api_url() -> String {
    "https://api.whereby.dev/v1".to_owned()
}
const fn default_whereby_timeout() -> u64 {
    10
}
const fn default_whereby_attempts() -> u32 {
    3
}

/// Whereby's REST API.
#[derive(Debug, Clone, Deserialize)]
pub struct WherebySettings {
    pub whereby_api_key: SecretString,
    #[serde(default = "default_whereby_api_url")]
    pub whereby_api_url: String,
    /// Seconds one request to Whereby may take, connecting included.
    #[serde(default = "default_whereby_timeout")]
    pub whereby_timeout_seconds: u64,
    /// Attempts per call, first included, on 429, 5xx and connection failures.
    #[serde(default = "default_whereby_attempts")]
    pub whereby_max_attempts: u32,
    /// The longest `Retry-After` we wait out; a longer one fails the call (503).
    #[serde(default = "default_five")]
    pub whereby_max_retry_after_seconds: u64,
}

impl WherebySettings {
    /// Range checks, at start-up: every call to Whereby must stay bounded.
    pub fn check(&self) -> Result<(), SettingsError> {
        let mut checks = Checks::default();
        checks.range(
            "WHEREBY_TIMEOUT_SECONDS",
            self.whereby_timeout_seconds,
            1..=120,
        );
        checks.range(
            "WHEREBY_MAX_ATTEMPTS",
            u64::from(self.whereby_max_attempts),
            1..=10,
        );
        checks.range(
            "WHEREBY_MAX_RETRY_AFTER_SECONDS",
            self.whereby_max_retry_after_seconds,
            0..=300,
        );
        checks.require(
            self.whereby_api_url.starts_with("https://")
                || self.whereby_api_url.starts_with("http://"),
            "WHEREBY_API_URL",
            "must be an http(s) URL",
        );
        checks.done()
    }
}

/// The S3 bucket Whereby's cloud recorder uploads to, and the key Whereby uses.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordingStorageSettings {
    pub recording_storage_aws_bucket_name: String,
    pub aws_whereby_access_key_id: String,
    pub aws_whereby_access_key_secret: SecretString,
}

/// How bearer tokens are verified (docs/configuration.md, "Identities").
///
/// People's tokens come from one issuer, verified with exactly one of: an HS256
/// secret (the local run), an RS256 public key (PEM), or a JSON Web Key Set (a URL
/// refreshed in the background, a file, or both). In-cluster services may instead
/// present their Kubernetes service-account token, verified against the
/// cluster's own key set.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    #[serde(default)]
    pub auth_jwt_secret: Option<SecretString>,
    #[serde(default)]
    pub auth_jwt_public_key: Option<String>,
    #[serde(default)]
    pub auth_jwks_url: Option<String>,
    #[serde(default)]
    pub auth_jwks_file: Option<String>,
    #[serde(default)]
    pub auth_jwt_audience: Option<String>,
    #[serde(default)]
    pub auth_jwt_issuer: Option<String>,
    #[serde(default = "default_jwks_refresh_seconds")]
    pub auth_jwks_refresh_seconds: u64,
    /// The claim that carries a token's roles: a name (`roles`, `groups`, `scope`,
    /// `https://example.com/roles`) or a dotted path (`realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub auth_roles_claim: String,
    #[serde(default)]
    pub auth_operator_role: Option<String>,
    #[serde(default)]
    pub auth_service_role: Option<String>,
    #[serde(default)]
    pub auth_service_account_issuer: Option<String>,
    #[serde(default)]
    pub auth_service_account_jwks_url: Option<String>,
    #[serde(default)]
    pub auth_service_account_jwks_file: Option<String>,
    #[serde(default = "default_service_account_audience")]
    pub auth_service_account_audience: String,
    /// The service accounts that are internal services, as `<namespace>:<name>` or
    /// `<namespace>:*`; any other service account's token is refused (any pod may
    /// mount a token for our audience).
    #[serde(default, deserialize_with = "comma_list")]
    pub auth_service_accounts: Vec<String>,
    /// A CA bundle (PEM) for the service-account key set's URL: the API server's
    /// own certificate authority when the URL is `kubernetes.default.svc`.
    #[serde(default)]
    pub auth_service_account_jwks_ca_file: Option<String>,
    /// A bearer token file sent when fetching the service-account key set (the
    /// pod's own token: the API server's `/openid/v1/jwks` is not anonymous).
    #[serde(default)]
    pub auth_service_account_jwks_token_file: Option<String>,
}

const fn default_jwks_refresh_seconds() -> u64 {
    300
}
fn default_roles_claim() -> String {
    "roles".to_owned()
}
fn default_service_account_audience() -> String {
    "room-api".to_owned()
}

impl AuthSettings {
    /// HS256 with `secret` and every other setting at its default (the local
    /// run's tokens, tests).
    pub fn with_secret(secret: SecretString) -> Self {
        Self {
            auth_jwt_secret: Some(secret),
            auth_jwt_public_key: None,
            auth_jwks_url: None,
            auth_jwks_file: None,
            auth_jwt_audience: None,
            auth_jwt_issuer: None,
            auth_jwks_refresh_seconds: default_jwks_refresh_seconds(),
            auth_roles_claim: default_roles_claim(),
            auth_operator_role: None,
            auth_service_role: None,
            auth_service_account_issuer: None,
            auth_service_account_jwks_url: None,
            auth_service_account_jwks_file: None,
            auth_service_account_audience: default_service_account_audience(),
            auth_service_accounts: Vec::new(),
            auth_service_account_jwks_ca_file: None,
            auth_service_account_jwks_token_file: None,
        }
    }

    /// Whether people's tokens are verified against a key set.
    pub fn uses_jwks(&self) -> bool {
        self.auth_jwks_url.is_some() || self.auth_jwks_file.is_some()
    }

    /// The combinations that cannot work, at start-up.
    pub fn check(&self) -> Result<(), SettingsError> {
        let mut checks = Checks::default();
        let modes = [
            self.auth_jwt_secret.is_some(),
            self.auth_jwt_public_key.is_some(),
            self.uses_jwks(),
        ]
        .iter()
        .filter(|set| **set)
        .count();
        checks.require(
            modes == 1,
            "AUTH_JWT_SECRET",
            "set exactly one of AUTH_JWT_SECRET (HS256), AUTH_JWT_PUBLIC_KEY (RS256) \
             and AUTH_JWKS_URL/AUTH_JWKS_FILE (a key set)",
        );
        if let Some(secret) = &self.auth_jwt_secret {
            checks.require(
                secret.expose_secret().len() >= 32,
                "AUTH_JWT_SECRET",
                "must be at least 32 bytes",
            );
        }
        if self.uses_jwks() {
            // A key set usually serves many applications: without both, a token
            // minted for another one would be accepted here.
            checks.require(
                self.auth_jwt_issuer.is_some(),
                "AUTH_JWT_ISSUER",
                "is required with AUTH_JWKS_URL/AUTH_JWKS_FILE",
            );
            checks.require(
                self.auth_jwt_audience.is_some(),
                "AUTH_JWT_AUDIENCE",
                "is required with AUTH_JWKS_URL/AUTH_JWKS_FILE",
            );
        }
        for (key, url) in [
            ("AUTH_JWKS_URL", &self.auth_jwks_url),
            (
                "AUTH_SERVICE_ACCOUNT_JWKS_URL",
                &self.auth_service_account_jwks_url,
            ),
        ] {
            if let Some(url) = url {
                checks.require(
                    url.starts_with("https://") || url.starts_with("http://"),
                    key,
                    "must be an http(s) URL",
                );
            }
        }
        checks.range(
            "AUTH_JWKS_REFRESH_SECONDS",
            self.auth_jwks_refresh_seconds,
            10..=86_400,
        );
        checks.require(
            !self.auth_roles_claim.trim().is_empty(),
            "AUTH_ROLES_CLAIM",
            "must name a claim",
        );
        let sa_keys = self.auth_service_account_jwks_url.is_some()
            || self.auth_service_account_jwks_file.is_some();
        checks.require(
            self.auth_service_account_issuer.is_some() == sa_keys,
            "AUTH_SERVICE_ACCOUNT_ISSUER",
            "set it together with AUTH_SERVICE_ACCOUNT_JWKS_URL or \
             AUTH_SERVICE_ACCOUNT_JWKS_FILE",
        );
        checks.require(
            self.auth_service_account_issuer.is_none()
                || self.auth_service_account_issuer != self.auth_jwt_issuer,
            "AUTH_SERVICE_ACCOUNT_ISSUER",
            "must differ from AUTH_JWT_ISSUER: a token's issuer decides whether it is a service",
        );
        checks.require(
            !self.auth_service_account_audience.trim().is_empty(),
            "AUTH_SERVICE_ACCOUNT_AUDIENCE",
            "must not be empty",
        );
        if self.auth_service_account_issuer.is_some() {
            checks.require(
                !self.auth_service_accounts.is_empty()
                    && self.auth_service_accounts.iter().all(|a| {
                        a.split_once(':')
                            .is_some_and(|(ns, name)| !ns.is_empty() && !name.is_empty())
                    }),
                "AUTH_SERVICE_ACCOUNTS",
                "list the service accounts that are internal services, as namespace:name \
                 or namespace:*",
            );
        }
        // The pod's token is a credential: never over plain HTTP beyond this host.
        let private = |u: &str| {
            u.starts_with("https://")
                || [
                    "http://127.",
                    "http://localhost:",
                    "http://localhost/",
                    "http://[::1]",
                ]
                .iter()
                .any(|p| u.starts_with(p))
        };
        checks.require(
            self.auth_service_account_jwks_token_file.is_none()
                || self
                    .auth_service_account_jwks_url
                    .as_deref()
                    .is_none_or(private),
            "AUTH_SERVICE_ACCOUNT_JWKS_URL",
            "must be https:// when AUTH_SERVICE_ACCOUNT_JWKS_TOKEN_FILE is set",
        );
        checks.done()
    }
}

fn default_amqp_url() -> SecretString {
    SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f")
}
const fn default_publish_timeout_ms() -> u64 {
    5000
}
const fn default_delivery_limit() -> u32 {
    10
}
fn default_retry_delays() -> Vec<std::time::Duration> {
    [2_000, 10_000, 60_000]
        .map(std::time::Duration::from_millis)
        .to_vec()
}

/// RabbitMQ: where it is and how our topology is shaped (docs/messages.md).
#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    #[serde(default = "default_amqp_url")]
    pub amqp_url: SecretString,
    /// Prepended to every exchange and queue name (isolation between tests or
    /// environments sharing a broker).
    #[serde(default)]
    pub amqp_prefix: String,
    /// How long a publish may wait for the broker's confirm.
    #[serde(default = "default_publish_timeout_ms")]
    pub amqp_publish_timeout_ms: u64,
    #[serde(default = "default_five")]
    pub amqp_connect_timeout_seconds: u64,
    /// Deliveries of one message before the broker dead-letters it.
    #[serde(default = "default_delivery_limit")]
    pub amqp_delivery_limit: u32,
    /// The delayed-retry steps: milliseconds, comma-separated.
    #[serde(default = "default_retry_delays", deserialize_with = "millis_list")]
    pub amqp_retry_delays_ms: Vec<std::time::Duration>,
    /// The most messages a work queue holds; beyond it publishes are refused
    /// (ingest answers 503) rather than old messages dropped.
    #[serde(default = "default_max_length")]
    pub amqp_max_length: u64,
    /// Nodes each quorum queue is placed on when it is created. Unset: the
    /// broker's default, every node of the cluster (3 on three nodes, 1 on one).
    #[serde(default)]
    pub amqp_quorum_initial_group_size: Option<u32>,
}

const fn default_max_length() -> u64 {
    1_000_000
}

/// The URLs `AMQP_URL` holds: one, or the nodes of one cluster, comma-separated.
pub fn split_amqp_urls(list: &str) -> impl Iterator<Item = &str> {
    lists::items(list)
}

impl AmqpSettings {
    /// Start-up checks: the URL's scheme (never echoing the URL, which holds a
    /// password), and every number within a sane range.
    pub fn check(&self) -> Result<(), SettingsError> {
        let mut checks = Checks::default();
        let urls: Vec<&str> = split_amqp_urls(self.amqp_url.expose_secret()).collect();
        checks.require(
            !urls.is_empty()
                && urls
                    .iter()
                    .all(|u| u.starts_with("amqp://") || u.starts_with("amqps://")),
            "AMQP_URL",
            "must be one amqp:// or amqps:// URL, or several comma-separated (value not shown: it may hold a password)",
        );
        if let Some(size) = self.amqp_quorum_initial_group_size {
            checks.range("AMQP_QUORUM_INITIAL_GROUP_SIZE", u64::from(size), 1..=9);
        }
        checks.range(
            "AMQP_PUBLISH_TIMEOUT_MS",
            self.amqp_publish_timeout_ms,
            100..=60_000,
        );
        checks.range(
            "AMQP_CONNECT_TIMEOUT_SECONDS",
            self.amqp_connect_timeout_seconds,
            1..=120,
        );
        checks.range(
            "AMQP_DELIVERY_LIMIT",
            u64::from(self.amqp_delivery_limit),
            1..=1000,
        );
        checks.range("AMQP_MAX_LENGTH", self.amqp_max_length, 1..=100_000_000);
        checks.done()
    }
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// How we reach S3 and SQS. The standard AWS variables keep their meaning:
/// `AWS_ENDPOINT_URL` (an emulator locally), `AWS_REGION`, and credentials from the
/// usual provider chain (environment, profile, web identity on Kubernetes) unless
/// both keys are given here.
#[derive(Debug, Clone, Deserialize)]
pub struct AwsSettings {
    #[serde(default)]
    pub aws_endpoint_url: Option<String>,
    #[serde(default = "default_region")]
    pub aws_region: String,
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    #[serde(default)]
    pub aws_secret_access_key: Option<SecretString>,
}

fn default_log_level() -> String {
    "info".to_owned()
}

/// Logging: `LOG_FORMAT` (`pretty` or `json`) and `LOG_LEVEL` (an env-filter
/// directive such as `info,room_api=debug`).
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[cfg(test)]
mod tests {
    use std::{io::Write, time::Duration};

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn guide_names_work_as_written_with_defaults() {
        let source = Source::from_parts(None, env(&[("WHEREBY_API_KEY", "k")])).expect("source");
        let whereby: WherebySettings = source.section().expect("whereby");
        assert_eq!(whereby.whereby_api_key.expose_secret(), "k");
        assert_eq!(whereby.whereby_api_url, "https://api.whereby.dev/v1");
        assert_eq!(whereby.whereby_max_attempts, 3);
    }

    #[test]
    fn secrets_of_digits_only_are_read_as_written() {
        let source = Source::from_parts(
            None,
            env(&[
                ("WHEREBY_API_KEY", "000123"),
                ("WHEREBY_MAX_ATTEMPTS", "4"),
                ("DATABASE_URL", "1e5"),
            ]),
        )
        .expect("source");
        let whereby: WherebySettings = source.section().expect("whereby");
        assert_eq!(whereby.whereby_api_key.expose_secret(), "000123");
        // Numbers still parse where a setting asks for one.
        assert_eq!(whereby.whereby_max_attempts, 4);
        let database: DatabaseSettings = source.section().expect("database");
        assert_eq!(database.database_url.expose_secret(), "1e5");
    }

    #[test]
    fn numbers_out_of_range_and_a_bad_amqp_url_are_refused_without_the_password() {
        let source = Source::from_parts(None, env(&[("DATABASE_STATEMENT_TIMEOUT_MS", "0")]))
            .expect("source");
        let database: DatabaseSettings = source.section().expect("database");
        let err = database
            .check()
            .expect_err("zero means no timeout to Postgres");
        assert!(
            err.to_string().contains("DATABASE_STATEMENT_TIMEOUT_MS"),
            "{err}"
        );

        let source = Source::from_parts(
            None,
            env(&[("AMQP_URL", "htp://guest:hunter2-pw@broker:5672/")]),
        )
        .expect("source");
        let amqp: AmqpSettings = source.section().expect("amqp");
        let err = amqp.check().expect_err("not an AMQP URL").to_string();
        assert!(
            err.contains("AMQP_URL") && !err.contains("hunter2"),
            "{err}"
        );

        let source =
            Source::from_parts(None, env(&[("AMQP_RETRY_DELAYS_MS", "2000,0")])).expect("source");
        let err = source
            .section::<AmqpSettings>()
            .expect_err("a delay of 0 ms")
            .to_string();
        assert!(err.contains("AMQP_RETRY_DELAYS_MS"), "{err}");
        let source = Source::from_parts(None, env(&[("AMQP_RETRY_DELAYS_MS", "500, 1500")]))
            .expect("source");
        let amqp: AmqpSettings = source.section().expect("amqp");
        assert_eq!(
            amqp.amqp_retry_delays_ms,
            [Duration::from_millis(500), Duration::from_millis(1500)]
        );
        let source = Source::from_parts(None, env(&[])).expect("source");
        let amqp: AmqpSettings = source.section().expect("amqp");
        assert!(amqp.check().is_ok(), "the defaults are valid");
        let database: DatabaseSettings = source.section().expect("database");
        assert!(database.check().is_ok(), "the defaults are valid");
    }

    #[test]
    fn a_missing_required_key_is_named() {
        let source = Source::from_parts(None, env(&[])).expect("source");
        let err = source
            .section::<WherebySettings>()
            .expect_err("api key is required");
        assert!(
            err.to_string().contains("WHEREBY_API_KEY is missing"),
            "{err}"
        );
    }

    #[test]
    fn one_error_names_every_missing_and_invalid_key_of_every_section() {
        let source = Source::from_parts(
            None,
            env(&[
                ("WHEREBY_MAX_ATTEMPTS", "many"),
                ("DATABASE_POOL_SIZE", "-1"),
                ("DATABASE_LOCK_TIMEOUT_MS", "0"),
                ("DATABASE_STATEMENT_TIMEOUT_MS", "1"),
            ]),
        )
        .expect("source");
        let mut reader = source.reader();
        let whereby: WherebySettings = reader.section().expect("built with placeholders");
        let storage: RecordingStorageSettings = reader.section().expect("built");
        let database: DatabaseSettings = reader.section().expect("built");
        reader.check(whereby.check());
        reader.check(database.check());
        drop(storage);
        let err = reader.finish().expect_err("several problems");
        assert_eq!(
            err.keys(),
            [
                "WHEREBY_MAX_ATTEMPTS",
                "WHEREBY_API_KEY",
                "RECORDING_STORAGE_AWS_BUCKET_NAME",
                "AWS_WHEREBY_ACCESS_KEY_ID",
                "AWS_WHEREBY_ACCESS_KEY_SECRET",
                "DATABASE_POOL_SIZE",
                "DATABASE_STATEMENT_TIMEOUT_MS",
                "DATABASE_LOCK_TIMEOUT_MS",
            ],
            "{err}"
        );
        let line = err.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.contains("WHEREBY_API_KEY is missing"), "{line}");
        assert!(line.contains(DOCUMENTED_IN), "{line}");
    }

    #[test]
    fn environment_overrides_dotenv_which_overrides_file() {
        let dir = std::env::temp_dir().join(format!("settings-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("settings.toml");
        let dotenv = dir.join(".env");
        let mut f = std::fs::File::create(&file).expect("file");
        writeln!(f, "whereby_api_key = \"from-file\"\nwhereby_api_url = \"http://file\"\nwhereby_max_attempts = 7").expect("write");
        std::fs::write(
            &dotenv,
            "WHEREBY_API_URL=http://dotenv\nWHEREBY_API_KEY=from-dotenv\n",
        )
        .expect("write");
        let source = Source::from_parts(
            Some(&dotenv),
            env(&[
                ("SETTINGS_FILE", file.to_str().expect("utf-8")),
                ("WHEREBY_API_KEY", "from-env"),
            ]),
        )
        .expect("source");
        let s: WherebySettings = source.section().expect("whereby");
        assert_eq!(s.whereby_api_key.expose_secret(), "from-env");
        assert_eq!(s.whereby_api_url, "http://dotenv");
        assert_eq!(s.whereby_max_attempts, 7);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_bad_value_of_a_required_key_is_named_once() {
        // Dropped as invalid, the key is then missing too: one problem, not two.
        let source = Source::from_parts(
            None,
            env(&[
                ("AWS_WHEREBY_ACCESS_KEY_ID", "id"),
                ("AWS_WHEREBY_ACCESS_KEY_SECRET", "secret"),
                ("RECORDING_STORAGE_AWS_BUCKET_NAME", "b"),
            ]),
        )
        .expect("source");
        let mut reader = source.reader();
        let _: RecordingStorageSettings = reader.section().expect("valid");
        // A number where a struct field wants one, and it has no default:
        // `AmqpSettings` has defaults everywhere, so use a custom section.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code, reason = "only read")]
        struct Required {
            aws_whereby_access_key_id: u32,
        }
        let _: Required = reader.section().expect("built with a placeholder");
        let err = reader.finish().expect_err("not a number");
        assert_eq!(err.keys(), ["AWS_WHEREBY_ACCESS_KEY_ID"], "{err}");
        assert!(err.to_string().contains("is not valid"), "{err}");
    }

    #[test]
    fn a_wrongly_typed_value_is_an_error() {
        let source = Source::from_parts(
            None,
            env(&[("WHEREBY_API_KEY", "k"), ("WHEREBY_MAX_ATTEMPTS", "many")]),
        )
        .expect("source");
        assert!(source.section::<WherebySettings>().is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let source = Source::from_parts(None, env(&[("WHEREBY_API_KEY", "very-secret-key")]))
            .expect("source");
        let s: WherebySettings = source.section().expect("whereby");
        assert!(!format!("{s:?}").contains("very-secret-key"));
    }
}
