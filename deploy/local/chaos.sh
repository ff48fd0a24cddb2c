#!/usr/bin/env bash
# `make chaos`: the fault suite. Needs the machine's RabbitMQ and PostgreSQL
# installed (it starts private instances of both) and the S3/SQS emulator (started
# if down, and stopped again at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"
trap stop_what_we_started EXIT
ensure_postgres
RUN_DIR="${TMPDIR:-/tmp}" ensure_moto
cargo build --workspace --bins
"$CARGO_TARGET_DIR/debug/whereby-bench" chaos --out "${CHAOS_OUT:-${TMPDIR:-/tmp}/whereby-chaos}" "$@"
