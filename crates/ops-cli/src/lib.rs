//! The operator CLI. Every command reads the same settings as the services (the
//! environment, `.env`, `SETTINGS_FILE`), prints a human verdict or `--json`, and
//! exits 0 when all is well, 1 when a check or command failed, 2 on bad usage.

pub mod dlq;
pub mod doctor;
pub mod erase;
pub mod events;
pub mod output;

use std::time::Duration;

use output::{Check, Report};
use settings::Source;

/// What an operator runs by hand against the deployed system. Reads the same
/// settings as the services (environment, .env, SETTINGS_FILE; see
/// docs/configuration.md) and prints a verdict per check, or JSON with --json.
/// Exit status: 0 all well, 1 a check or command failed, 2 bad usage.
#[derive(Debug, clap::Parser)]
#[command(
    name = "whereby-ops",
    version,
    arg_required_else_help = true,
    verbatim_doc_comment
)]
pub struct Cli {
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check every setting and dependency, with a hint for each problem.
    Doctor {
        /// Check only what this service uses, with its own settings and
        /// credentials: in its pod, `kubectl exec deploy/<service> -- whereby-ops
        /// doctor --for <service>` passes when the pod is healthy.
        #[arg(long = "for", value_enum, value_name = "SERVICE")]
        service: Option<doctor::Service>,
        /// Also check webhook-ingest's health at this URL.
        #[arg(long, value_name = "URL")]
        webhook_health_url: Option<String>,
    },
    /// Print a shell completion script: `whereby-ops completions bash >
    /// /etc/bash_completion.d/whereby-ops`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Webhook endpoint checks.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// The webhook dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Stored webhook events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Erase one person's or one meeting's personal data (audited, idempotent).
    Erase {
        #[command(flatten)]
        whom: ErasureTarget,
        /// Who asked for it (kept in the audit row).
        #[arg(long, value_name = "WHO")]
        requested_by: String,
    },
    /// Recordings.
    #[command(subcommand)]
    Recordings(RecordingsCommand),
    /// Apply pending database migrations.
    Migrate,
}

#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// Send a test event signed with WHEREBY_WEBHOOK_SECRET to the webhook URL.
    SendTest {
        /// The public webhook URL, e.g. https://api.example.com/v1/whereby.
        #[arg(long)]
        url: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Show what is in the webhook dead-letter queue.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead-lettered webhooks back for the worker; stops at a message that
    /// was replayed before and failed again, unless --again.
    Replay {
        /// At most this many.
        #[arg(long, default_value_t = dlq::DEFAULT_REPLAY_LIMIT)]
        limit: usize,
        /// Also replay messages that failed again after a replay.
        #[arg(long)]
        again: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum EventsCommand {
    /// Send webhook events stored as unrecognised since a time through the worker
    /// again (after a parser fix).
    Reapply {
        /// RFC 3339, or a span back from now: 90m, 24h, 7d.
        #[arg(long, value_name = "T")]
        since: String,
        #[arg(long, default_value_t = events::DEFAULT_REAPPLY_LIMIT)]
        limit: usize,
    },
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ErasureTarget {
    /// The person's id in our product (Whereby's externalId).
    #[arg(long, value_name = "X")]
    external_id: Option<String>,
    /// One Whereby participant.
    #[arg(long, value_name = "P")]
    participant_id: Option<String>,
    /// One meeting (its id).
    #[arg(long, value_name = "ID")]
    meeting: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum RecordingsCommand {
    /// Run the recordings catch-up scan now, on a worker.
    Rescan {
        /// The worker's health/metrics address, e.g. http://recording-worker:8082.
        #[arg(long, value_name = "URL")]
        worker_url: String,
    },
}

/// The options of a command, as the commands read them.
#[derive(Debug, Default)]
pub struct Options {
    pub json: bool,
    pub url: Option<String>,
    /// `dlq replay`: also replay messages that failed again after a replay.
    pub again: bool,
    /// `events reapply`: from when.
    pub since: Option<String>,
    /// `erase`: whom, and who asked.
    pub external_id: Option<String>,
    pub participant_id: Option<String>,
    pub meeting: Option<String>,
    pub requested_by: Option<String>,
    pub limit: Option<usize>,
    pub worker_url: Option<String>,
    pub webhook_health_url: Option<String>,
    /// `doctor --for`: one service's checks only.
    pub service: Option<doctor::Service>,
}

/// The settings part of `--help`: what the commands read.
pub fn settings_help() -> String {
    use settings::keys_of;
    let keys = [
        keys_of::<settings::DatabaseSettings>(),
        keys_of::<settings::AmqpSettings>(),
        keys_of::<settings::WherebySettings>(),
        vec!["WHEREBY_WEBHOOK_SECRET".to_owned()],
        keys_of::<settings::RecordingStorageSettings>(),
        vec![
            "AWS_PROCESS_RECORDING_QUEUE_URL".to_owned(),
            "RECORDING_RETENTION_DAYS".to_owned(),
        ],
        keys_of::<settings::AwsSettings>(),
        keys_of::<settings::AuthSettings>(),
    ]
    .concat();
    format!(
        "{}\nSecrets are read from there, never from the command line. Operating \
         guide: docs/operations.md.",
        settings::help_text(&keys)
    )
}

/// Parses the command line (help and usage errors exit here: 0 and 2).
pub fn parse_args() -> Cli {
    use clap::FromArgMatches;
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The command line's definition, with the settings in its help.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().after_help(settings_help())
}

/// Runs a parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut command(), "whereby-ops", &mut std::io::stdout());
        return 0;
    }
    let source = match Source::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("whereby-ops: {e}");
            return 2;
        }
    };
    let mut o = Options {
        json: cli.json,
        ..Options::default()
    };
    let report = match cli.command {
        Command::Completions { .. } => return 0,
        Command::Doctor {
            service,
            webhook_health_url,
        } => {
            o.service = service;
            o.webhook_health_url = webhook_health_url;
            doctor::run(&source, &o).await
        }
        Command::Webhook(WebhookCommand::SendTest { url }) => {
            o.url = Some(url);
            send_test(&source, &o).await
        }
        Command::Dlq(DlqCommand::List { limit }) => {
            o.limit = Some(limit);
            dlq::list(&source, &o).await
        }
        Command::Dlq(DlqCommand::Replay { limit, again }) => {
            o.limit = Some(limit);
            o.again = again;
            dlq::replay(&source, &o).await
        }
        Command::Events(EventsCommand::Reapply { since, limit }) => {
            o.since = Some(since);
            o.limit = Some(limit);
            events::reapply(&source, &o).await
        }
        Command::Erase { whom, requested_by } => {
            o.external_id = whom.external_id;
            o.participant_id = whom.participant_id;
            o.meeting = whom.meeting;
            o.requested_by = Some(requested_by);
            erase::run(&source, &o).await
        }
        Command::Recordings(RecordingsCommand::Rescan { worker_url }) => {
            o.worker_url = Some(worker_url);
            rescan(&o).await
        }
        Command::Migrate => migrate(&source).await,
    };
    report.print(o.json);
    if report.ok() { 0 } else { 1 }
}

/// Sends a signed event of a type no one acts on (`whereby-ops.test`): the
/// endpoint's answer shows whether the secret and the routing are right.
async fn send_test(source: &Source, o: &Options) -> Report {
    let mut report = Report::new("webhook send-test");
    let Some(url) = &o.url else {
        report.push(Check::fail(
            "arguments",
            "--url is required",
            "pass the public webhook URL, e.g. https://api.example.com/v1/whereby",
        ));
        return report;
    };
    // The secret comes from the settings only: on a command line it would be in
    // the shell's history and in every process listing.
    let secret = source
        .get("whereby_webhook_secret")
        .and_then(|s| s.split(',').next().map(|s| s.trim().to_owned()));
    let Some(secret) = secret else {
        report.push(Check::fail(
            "secret",
            "no secret",
            "set WHEREBY_WEBHOOK_SECRET (environment or .env)",
        ));
        return report;
    };
    let event = serde_json::json!({
        "id": format!("whereby-ops-test-{}", uuid::Uuid::new_v4().simple()),
        "apiVersion": "1.0",
        "createdAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "type": "whereby-ops.test",
        "data": {},
    });
    let body = serde_json::to_vec(&event).unwrap_or_default();
    let signature = whereby::webhook::sign(&secret, chrono::Utc::now().timestamp(), &body);
    let sent = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header(whereby::webhook::SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => {
            report.push(Check::ok(
                "delivery",
                format!(
                    "{} accepted the signed event (HTTP {})",
                    url,
                    res.status().as_u16()
                ),
            ));
        }
        Ok(res) => {
            let status = res.status().as_u16();
            let hint = match status {
                401 => "the endpoint's WHEREBY_WEBHOOK_SECRET differs from the secret used here",
                404 => "the URL does not reach webhook-ingest: check the ingress path /v1/whereby",
                413 => "a proxy limits the body size below the event's",
                503 => "webhook-ingest cannot reach RabbitMQ: check its /v1/whereby/health",
                _ => "see webhook-ingest's log for this request",
            };
            report.push(Check::fail("delivery", format!("HTTP {status}"), hint));
        }
        Err(e) => report.push(Check::fail(
            "delivery",
            format!("no answer: {e}"),
            "check DNS, TLS and that the URL is reachable from here",
        )),
    }
    report
}

/// Asks a worker to run the catch-up scan now (it runs under the job's lock).
async fn rescan(o: &Options) -> Report {
    let mut report = Report::new("recordings rescan");
    let Some(base) = &o.worker_url else {
        report.push(Check::fail(
            "arguments",
            "--worker-url is required",
            "the worker's health/metrics address, e.g. http://recording-worker:8082",
        ));
        return report;
    };
    let url = format!("{}/admin/jobs/scan", base.trim_end_matches('/'));
    match reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(600))
        .send()
        .await
    {
        Ok(res) => {
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            if status == 200 {
                report.push(Check::ok(
                    "scan",
                    format!(
                        "examined {}, registered {}, failed {}",
                        body["examined"], body["changed"], body["failed"]
                    ),
                ));
            } else if status == 409 {
                report.push(Check::fail(
                    "scan",
                    "another replica is running the scan",
                    "wait and try again",
                ));
            } else {
                report.push(Check::fail(
                    "scan",
                    format!("HTTP {status}"),
                    "see the worker's log",
                ));
            }
        }
        Err(e) => report.push(Check::fail(
            "scan",
            format!("no answer: {e}"),
            "check --worker-url (port 8082 of a recording-worker pod)",
        )),
    }
    report
}

async fn migrate(source: &Source) -> Report {
    let mut report = Report::new("migrate");
    let url = match source.section::<settings::DatabaseSettings>() {
        Ok(d) => secrecy::ExposeSecret::expose_secret(&d.database_url).to_owned(),
        Err(e) => {
            report.push(Check::fail("settings", e.to_string(), "set DATABASE_URL"));
            return report;
        }
    };
    match db::migrate::run_pending(&url).await {
        Ok(applied) if applied.is_empty() => {
            report.push(Check::ok("migrations", "the schema is current"))
        }
        Ok(applied) => report.push(Check::ok(
            "migrations",
            format!("applied {}", applied.join(", ")),
        )),
        Err(e) => report.push(Check::fail(
            "migrations",
            e.to_string(),
            "check DATABASE_URL and that the role may create tables",
        )),
    }
    report
}

#[cfg(test)]
mod tests {
    /// Secrets come from the settings only: on a command line they would be in the
    /// shell's history and in every process listing. No option may take one.
    #[test]
    fn no_option_takes_a_secret() {
        fn walk(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str().to_lowercase();
                if ["secret", "password", "token", "key", "credential"]
                    .iter()
                    .any(|word| id.contains(word))
                {
                    found.push(format!("{path} --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut found = Vec::new();
        walk(&super::command(), "whereby-ops", &mut found);
        assert!(found.is_empty(), "options that take secrets: {found:?}");
        // The walk sees every option (so that the check can fail).
        let mut all = 0;
        fn count(cmd: &clap::Command, all: &mut usize) {
            *all += cmd.get_arguments().count();
            cmd.get_subcommands().for_each(|s| count(s, all));
        }
        count(&super::command(), &mut all);
        assert!(all >= 15, "{all}");
    }
}
