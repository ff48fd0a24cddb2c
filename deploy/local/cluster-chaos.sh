#!/usr/bin/env bash
# `make cluster-chaos`: the fault suite on cluster engines: three private RabbitMQ
# nodes in one cluster, a private PostgreSQL primary with a streaming standby, two
# replicas of each service. Needs RabbitMQ and PostgreSQL installed (never touches
# the machine's running ones) and the S3/SQS emulator (started if down, stopped
# again at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"
trap stop_what_we_started EXIT
ensure_postgres
RUN_DIR="${TMPDIR:-/tmp}" ensure_moto
cargo build --workspace --bins
"$CARGO_TARGET_DIR/debug/whereby-bench" cluster-chaos --out "${CHAOS_OUT:-${TMPDIR:-/tmp}/whereby-cluster-chaos}" "$@"
