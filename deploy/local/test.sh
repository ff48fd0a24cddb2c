#!/usr/bin/env bash
# `make test`: every test of the workspace against the real PostgreSQL, RabbitMQ and
# S3/SQS emulator (each started if down; the emulator is stopped again at the end if
# this started it), then the API fuzzer. Uses cargo-nextest when installed (a
# process per test), else cargo test.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"
trap stop_what_we_started EXIT
ensure_postgres
ensure_rabbitmq
RUN_DIR="${TMPDIR:-/tmp}" ensure_moto
# The process-level tests (crates/e2e-tests/tests/processes.rs) run the binaries.
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# The property-based API fuzzer against a fresh room-api (its own database and stand-in).
deploy/local/fuzz-api.sh
