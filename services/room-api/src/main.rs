//! room-api binary. `room-api` (or `room-api serve`) serves; `room-api migrate`
//! applies migrations and exits (it needs only the database settings);
//! `room-api dev-token <sub>` prints an HS256 token (it needs only `AUTH_*`).

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use room_api::{Application, RoomApiSettings};
use settings::{AuthSettings, DatabaseSettings, ExposeSecret, LogSettings, Source};

/// Rooms with recording settings, and Whereby meetings created on demand, behind
/// bearer-token auth. The API document is served at /v1/openapi.json.
#[derive(Parser)]
#[command(name = "room-api", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on ROOM_API_ADDR (the default command).
    Serve,
    /// Apply pending database migrations to DATABASE_URL, then exit.
    Migrate,
    /// Print a bearer token for local use, signed with AUTH_JWT_SECRET (HS256).
    DevToken {
        /// The token's subject: the user (or service) it stands for.
        subject: String,
        /// Hours until it expires.
        #[arg(default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8760))]
        hours: u64,
    },
}

#[tokio::main]
#[allow(
    clippy::print_stdout,
    reason = "dev-token prints the token as its output"
)]
async fn main() -> anyhow::Result<()> {
    let command = Cli::command().after_help(settings::help_text(&RoomApiSettings::keys()));
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    let source = settings::or_exit("room-api", Source::load());
    let init_logs = |log: &LogSettings| {
        telemetry::init(
            "room-api",
            log.log_format == settings::LogFormat::Json,
            &log.log_level,
        )
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = settings::or_exit("room-api", RoomApiSettings::from_source(&source));
            let _telemetry = init_logs(&settings.log);
            let shutdown = telemetry::shutdown_on_signals();
            Application::build(settings).await?.run(shutdown).await?;
        }
        Command::Migrate => {
            let mut reader = source.reader();
            let database: Result<DatabaseSettings, _> = reader.section();
            let log: Result<LogSettings, _> = reader.section();
            let (database, log) = settings::or_exit(
                "room-api",
                reader
                    .finish()
                    .and(database)
                    .and_then(|d| log.map(|l| (d, l))),
            );
            let _telemetry = init_logs(&log);
            db::migrate::run_pending(database.database_url.expose_secret()).await?;
        }
        Command::DevToken { subject, hours } => {
            let auth: AuthSettings = settings::or_exit("room-api", source.section());
            match room_api::auth::dev_token(&auth, &subject, hours) {
                Ok(token) => println!("{token}"),
                Err(e) => {
                    eprintln!("room-api dev-token: {e}");
                    std::process::exit(2);
                }
            }
        }
    }
    Ok(())
}
