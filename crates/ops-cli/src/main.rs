//! `whereby-ops`: what an operator runs by hand. See `whereby-ops help`.

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(whereby_ops::run(&args).await);
}
