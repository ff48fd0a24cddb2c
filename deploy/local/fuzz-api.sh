#!/usr/bin/env bash
# Property-based fuzzing of room-api's public API against its own OpenAPI document
# (schemathesis, every one of its checks): each operation with generated valid and
# invalid input, undocumented methods, missing credentials, and sequences that
# follow the document's links (a room, its branding, its meeting, ...). Fails on
# any 5xx, on any status, content type, header or body the document does not
# describe, on invalid input accepted or valid input refused, and on a created
# resource that cannot be found or a deleted one that still can.
#
# Self-contained: a fresh database (dropped at exit), the Whereby stand-in and
# room-api on free ports, a development token, all stopped at exit. Builds the two
# binaries (CARGO_TARGET_DIR, default ~/.cache/whereby-target). Installs schemathesis
# from PyPI when missing. About 1.5 minutes on 2 cores.
#
# FUZZ_EXAMPLES (default 300) bounds the examples per operation and phase;
# FUZZ_SEED replays a run (the seed is printed); FUZZ_ARGS adds schemathesis
# options (e.g. `--report har`); FUZZ_KEEP=1 keeps the logs (they are kept after
# a failure anyway).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"
bin="$CARGO_TARGET_DIR/debug"
# Never a stale binary: built here (seconds when nothing changed).
cargo build --quiet --bin room-api --bin whereby-stand-in
# The version whose command line and checks this script was written against.
SCHEMATHESIS_VERSION=4.32.5
if ! schemathesis --version 2>/dev/null | grep -q " $SCHEMATHESIS_VERSION\$"; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION"
  python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
  hash -r
fi
ensure_postgres

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

work="$(mktemp -d)"
db="fuzz_$(date +%s)_$$"
pids=()
cleanup() {
  status=$?
  # A service that died during the run: say how (its status; 137 = killed).
  for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then
      code=0; wait "$p" 2>/dev/null || code=$?
      echo "error: $(cat "$work/$p.name" 2>/dev/null) had exited with status $code" >&2
    fi
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  stop_what_we_started
  if [ "$status" != 0 ] && [ -f "$work/room-api.log" ]; then
    echo "--- last lines of room-api's log ($work/room-api.log) ---" >&2
    tail -n 30 "$work/room-api.log" >&2
  elif [ "${FUZZ_KEEP:-0}" = 1 ]; then
    echo "logs kept in $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$db\""
stand_in_port="$(free_port)"
api_port="$(free_port)"
export WHEREBY_API_KEY=fuzz-whereby-api-key
export WHEREBY_STAND_IN_ADDR="127.0.0.1:$stand_in_port"
export WHEREBY_API_URL="http://127.0.0.1:$stand_in_port/v1"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export ROOM_API_ADDR="127.0.0.1:$api_port"
export AUTH_JWT_SECRET=fuzz-secret-that-is-long-enough-0123456789
# alice, the token's subject, is an operator too: the operators' list of
# recordings is fuzzed as well (another's room is 404 either way).
export AUTH_SERVICE_SUBJECTS=svc-pipeline AUTH_OPERATOR_SUBJECTS=alice
export RECORDING_STORAGE_AWS_BUCKET_NAME=fuzz-recordings
export AWS_WHEREBY_ACCESS_KEY_ID=test AWS_WHEREBY_ACCESS_KEY_SECRET=test
# Only presigned URLs are made, offline: the public API needs no S3 emulator.
export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT:-5000}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export LOG_FORMAT=json
unset WHEREBY_STAND_IN_WEBHOOK_URL

# In the work directory, without SETTINGS_FILE: a developer's .env or settings
# file must not change what is fuzzed.
unset SETTINGS_FILE
export DATABASE_MIGRATE_ON_START=true
(cd "$work" && exec "$bin/whereby-stand-in") >"$work/whereby-stand-in.log" 2>&1 & pids+=($!); echo whereby-stand-in >"$work/$!.name"
(cd "$work" && exec "$bin/room-api") >"$work/room-api.log" 2>&1 & pids+=($!); echo room-api >"$work/$!.name"
wait_for_port "$stand_in_port" 30 "the Whereby stand-in"
wait_for_port "$api_port" 60 room-api
token="$("$bin/room-api" dev-token alice)"

# Links: the document's (by room id) and those Location headers give (by id too).
# Not links guessed from field names: they would reach the same room by its name,
# and schemathesis would take one room for two (a delete through one key, then a
# 404 through the other, reported as "created resource not found").
# Scenarios of up to 10 steps (6 by default), so that a room's meeting is joined.
cat >"$work/schemathesis.toml" <<'TOML'
[phases.stateful]
max-steps = 10

[phases.stateful.inference]
algorithms = ["location-headers"]
TOML
seed="${FUZZ_SEED:-$RANDOM$RANDOM}"
examples="${FUZZ_EXAMPLES:-300}"
echo "fuzzing room-api at http://127.0.0.1:$api_port (seed $seed, $examples examples per operation)"
started=$SECONDS
(
  cd "$work"
  schemathesis --config-file "$work/schemathesis.toml" run "http://127.0.0.1:$api_port/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --max-examples "$examples" \
    --seed "$seed" \
    --workers 2 \
    --request-timeout 30 \
    --generation-database none \
    --no-color ${FUZZ_ARGS:-} # unquoted: several options
)
echo "fuzzing passed in $((SECONDS - started)) s"
