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

pub const USAGE: &str = "\\
usage: whereby-ops <command> [options]

commands:
  doctor [--webhook-health-url URL]   check every setting and dependency, with hints
  webhook send-test --url URL         send a test event signed with WHEREBY_WEBHOOK_SECRET
                                      (from the environment or .env, never the command line)
  dlq list [--limit N]                show what is in the webhook dead-letter queue
  dlq replay [--limit N] [--again]    put dead-lettered webhooks back for the worker (at
                                      most N, default 100); stops at a message that was
                                      replayed before and failed again, unless --again
  events reapply --since T [--limit N]
                                      send webhook events stored as unrecognised since T
                                      (RFC 3339, or 90m / 24h / 7d back) through the
                                      worker again, after a parser fix (default 1000)
  erase (--external-id X | --participant-id P | --meeting ID) --requested-by WHO
                                      erase one person's or one meeting's personal data
                                      (participants, webhook payloads, the meeting's
                                      recordings); audited, idempotent
  recordings rescan --worker-url URL  run the recordings catch-up scan now
  migrate                             apply pending database migrations

options:
  --json                              machine-readable output
";

/// Flags after the command words.
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
}

fn parse(args: &[String]) -> Result<(Vec<&str>, Options), String> {
    let mut words = Vec::new();
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--json" => o.json = true,
            "--url" => o.url = Some(value("--url")?),
            "--again" => o.again = true,
            "--since" => o.since = Some(value("--since")?),
            "--external-id" => o.external_id = Some(value("--external-id")?),
            "--participant-id" => o.participant_id = Some(value("--participant-id")?),
            "--meeting" => o.meeting = Some(value("--meeting")?),
            "--requested-by" => o.requested_by = Some(value("--requested-by")?),
            "--worker-url" => o.worker_url = Some(value("--worker-url")?),
            "--webhook-health-url" => o.webhook_health_url = Some(value("--webhook-health-url")?),
            "--limit" => {
                o.limit = Some(
                    value("--limit")?
                        .parse()
                        .map_err(|_| "--limit takes a whole number".to_owned())?,
                );
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            word => words.push(word),
        }
    }
    Ok((words, o))
}

/// Runs a command line; returns the exit code.
#[allow(clippy::print_stdout, reason = "the usage text is output")]
pub async fn run(args: &[String]) -> i32 {
    let (words, options) = match parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return 2;
        }
    };
    let source = match Source::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let report = match words.as_slice() {
        ["doctor"] => doctor::run(&source, &options).await,
        ["webhook", "send-test"] => send_test(&source, &options).await,
        ["dlq", "list"] => dlq::list(&source, &options).await,
        ["dlq", "replay"] => dlq::replay(&source, &options).await,
        ["events", "reapply"] => events::reapply(&source, &options).await,
        ["erase"] => erase::run(&source, &options).await,
        ["recordings", "rescan"] => rescan(&options).await,
        ["migrate"] => migrate(&source).await,
        ["help"] | [] => {
            print!("{USAGE}");
            return if words.is_empty() { 2 } else { 0 };
        }
        _ => {
            eprintln!("error: unknown command {:?}\n\n{USAGE}", words.join(" "));
            return 2;
        }
    };
    report.print(options.json);
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
