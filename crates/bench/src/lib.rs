//! Evidence for the throughput and the no-loss promise, with real processes.
//!
//! - `whereby-bench bench --out DIR`: the load benchmark (`make bench`); prints a
//!   report and writes it as JSON, Markdown and an SVG latency plot.
//! - `whereby-bench chaos [--scenario NAME[,NAME…]]`: the fault suite (`make chaos`, also run
//!   by `.ci/run`); prints the table and fails if any scenario lost an accepted event.
//!
//! Both start the services from the built binaries (`WHEREBY_BIN_DIR`, default next
//! to this program).

pub mod bench;
pub mod chaos;
pub mod procs;
pub mod proxy;
pub mod sender;
pub mod stack;

/// An HS256 bearer token for room-api (the stack's `AUTH_JWT_SECRET`).
pub fn token(secret: &str, sub: &str) -> anyhow::Result<String> {
    let exp = chrono::Utc::now().timestamp() + 3600;
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())?,
    )?)
}

#[allow(clippy::print_stdout, reason = "the report is the program's output")]
pub async fn run(args: &[String]) -> i32 {
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("chaos") => match chaos::run(arg("--scenario").as_deref()).await {
            Ok(rows) => {
                println!("{}", chaos::table(&rows));
                if let Some(out) = arg("--out") {
                    let _ = std::fs::create_dir_all(&out);
                    let _ = std::fs::write(
                        format!("{out}/chaos.json"),
                        serde_json::to_string_pretty(&rows).unwrap_or_default(),
                    );
                    let _ = std::fs::write(format!("{out}/chaos.md"), chaos::table(&rows));
                }
                let failed = rows.iter().filter(|r| !r.passed).count();
                println!("chaos: {} passed, {} failed", rows.len() - failed, failed);
                i32::from(failed > 0)
            }
            Err(e) => {
                eprintln!("chaos: {e:#}");
                1
            }
        },
        Some("bench") => match bench::run(args).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("bench: {e:#}");
                1
            }
        },
        _ => {
            eprintln!(
                "usage: whereby-bench bench --out DIR [--duration S] [--connections N] [--rate R] [--backlog N]\n       whereby-bench chaos [--scenario NAME] [--out DIR]"
            );
            2
        }
    }
}
