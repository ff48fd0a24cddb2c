#!/usr/bin/env bash
# `make bench`: the load benchmark against release builds of the services. Starts
# what it needs (PostgreSQL, RabbitMQ, the S3/SQS emulator) and stops the emulator
# again if it started it.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"
out="${1:-bench-results}"
trap stop_what_we_started EXIT
ensure_postgres
ensure_rabbitmq
RUN_DIR="${TMPDIR:-/tmp}" ensure_moto
echo "building release binaries (the first time: about 15 minutes on 2 cores)"
cargo build --release --workspace --bins
"$CARGO_TARGET_DIR/release/whereby-bench" bench --out "$out" "${@:2}"
