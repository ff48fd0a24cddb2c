//! `whereby-bench bench --out DIR` and `whereby-bench chaos`: see the crate docs.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(whereby_bench::run(&args).await);
}
