#!/usr/bin/env bash
# `make bench`: the load benchmark against release builds of the services.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"
out="${1:-bench-results}"
ensure_postgres
ensure_rabbitmq
echo "building release binaries (the first time takes several minutes on 2 cores)"
cargo build --release --workspace --bins
"$CARGO_TARGET_DIR/release/whereby-bench" bench --out "$out" "${@:2}"
