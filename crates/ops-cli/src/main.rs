//! `whereby-ops`: what an operator runs by hand. See `whereby-ops --help`.

#[tokio::main]
async fn main() {
    let cli = whereby_ops::parse_args();
    std::process::exit(whereby_ops::run(cli).await);
}
