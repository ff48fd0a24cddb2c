#!/usr/bin/env bash
# `make chaos` and `make cluster-chaos`: the fault suites. The first argument is the
# suite (`chaos`: one broker node, one Postgres, one process per service;
# `cluster-chaos`: three broker nodes, a Postgres primary and standby, two replicas
# of each service); the rest go to whereby-bench (`--scenario a,b`). Needs the
# machine's RabbitMQ and PostgreSQL installed (it starts private instances of both,
# never touching the running ones) and the S3/SQS emulator (started if down, and
# stopped again at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"
suite="${1:-chaos}"
case "$suite" in chaos | cluster-chaos) ;; *) echo "usage: $0 chaos|cluster-chaos [--scenario …]" >&2; exit 2 ;; esac
trap stop_what_we_started EXIT
ensure_postgres
RUN_DIR="${TMPDIR:-/tmp}" ensure_moto
cargo build --workspace --bins
"$CARGO_TARGET_DIR/debug/whereby-bench" "$suite" --out "${CHAOS_OUT:-${TMPDIR:-/tmp}/whereby-$suite}" "${@:2}"
