//! `whereby-bench bench --out DIR` and `whereby-bench chaos`: see the crate docs.

use clap::Parser;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cli = whereby_bench::Cli::parse();
    std::process::exit(whereby_bench::run(cli).await);
}
