#!/usr/bin/env bash
# `make run`: the whole system on this machine. Starts PostgreSQL and RabbitMQ if
# they are down, the Whereby stand-in (unless WHEREBY_API_URL points elsewhere),
# applies migrations, starts room-api, and prints a copy-paste example.
# Settings come from the environment, then ./.env, then the defaults below.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"

if [ -f .env ]; then set -a; . ./.env; set +a; fi
ROOM_API_PORT="${ROOM_API_PORT:-8080}"
STAND_IN_PORT="${WHEREBY_STAND_IN_PORT:-8090}"
use_stand_in=0
if [ -z "${WHEREBY_API_URL:-}" ]; then
  use_stand_in=1
  export WHEREBY_API_URL="http://127.0.0.1:${STAND_IN_PORT}/v1"
  export WHEREBY_STAND_IN_ADDR="127.0.0.1:${STAND_IN_PORT}"
fi
export WHEREBY_API_KEY="${WHEREBY_API_KEY:-local-whereby-api-key}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/whereby}"
export ROOM_API_ADDR="${ROOM_API_ADDR:-127.0.0.1:${ROOM_API_PORT}}"
export AUTH_JWT_SECRET="${AUTH_JWT_SECRET:-local-development-secret-change-me-0123456789}"
export RECORDING_STORAGE_AWS_BUCKET_NAME="${RECORDING_STORAGE_AWS_BUCKET_NAME:-local-recordings}"
export AWS_WHEREBY_ACCESS_KEY_ID="${AWS_WHEREBY_ACCESS_KEY_ID:-local-access-key-id}"
export AWS_WHEREBY_ACCESS_KEY_SECRET="${AWS_WHEREBY_ACCESS_KEY_SECRET:-local-access-key-secret}"

ensure_postgres
ensure_rabbitmq
db_name="${DATABASE_URL##*/}"; db_name="${db_name%%\?*}"
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='${db_name}'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"${db_name}\""
fi

echo "building (first build takes a few minutes on 2 cores)"
cargo build --quiet --bin room-api --bin whereby-stand-in
bin="$CARGO_TARGET_DIR/debug"
mkdir -p .run
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ "$use_stand_in" = 1 ]; then
  if port_open "$STAND_IN_PORT"; then echo "error: port $STAND_IN_PORT is taken (set WHEREBY_STAND_IN_PORT)" >&2; exit 1; fi
  "$bin/whereby-stand-in" >.run/whereby-stand-in.log 2>&1 & pids+=($!)
  wait_for_port "$STAND_IN_PORT" 15 "the Whereby stand-in"
fi
"$bin/room-api" migrate
if port_open "$ROOM_API_PORT"; then echo "error: port $ROOM_API_PORT is taken (set ROOM_API_PORT)" >&2; exit 1; fi
"$bin/room-api" >.run/room-api.log 2>&1 & pids+=($!)
wait_for_port "$ROOM_API_PORT" 30 room-api
token="$("$bin/room-api" dev-token alice)"
api="http://127.0.0.1:${ROOM_API_PORT}"

cat <<MSG

  room-api          $api   (log: .run/room-api.log)
  Whereby API       $WHEREBY_API_URL$([ "$use_stand_in" = 1 ] && echo "   (local stand-in; log: .run/whereby-stand-in.log)")
  PostgreSQL        $DATABASE_URL
  RabbitMQ          amqp://127.0.0.1:5672

Try it (a development token for user "alice", valid 24 h):

  TOKEN=$token

  curl -s -X POST $api/v1/rooms -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{"name":"standup","recording_type":"cloud","recording_trigger":"automatic-2nd-participant"}'

  curl -s -X POST $api/v1/rooms/standup/meeting -H "Authorization: Bearer \$TOKEN"

  curl -s $api/v1/openapi.json | head -c 300

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
echo "a service exited; see .run/*.log" >&2
exit 1
