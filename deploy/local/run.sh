#!/usr/bin/env bash
# `make run`: the whole system on this machine. Starts PostgreSQL and RabbitMQ if
# they are down, the Whereby stand-in (unless WHEREBY_API_URL points elsewhere; it
# also sends signed webhooks to webhook-ingest), applies migrations, starts
# room-api, webhook-ingest and recording-worker, and prints a copy-paste example.
# Settings come from the environment, then ./.env, then the defaults below.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"

if [ -f .env ]; then set -a; . ./.env; set +a; fi
ROOM_API_PORT="${ROOM_API_PORT:-8080}"
INGEST_PORT="${WEBHOOK_INGEST_PORT:-8081}"
WORKER_PORT="${WORKER_PORT:-8082}"
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
export WHEREBY_WEBHOOK_SECRET="${WHEREBY_WEBHOOK_SECRET:-local-webhook-secret}"
export WEBHOOK_INGEST_ADDR="${WEBHOOK_INGEST_ADDR:-127.0.0.1:${INGEST_PORT}}"
export WORKER_ADDR="${WORKER_ADDR:-127.0.0.1:${WORKER_PORT}}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export WHEREBY_STAND_IN_WEBHOOK_URL="${WHEREBY_STAND_IN_WEBHOOK_URL:-http://127.0.0.1:${INGEST_PORT}/v1/whereby}"
export AUTH_SERVICE_SUBJECTS="${AUTH_SERVICE_SUBJECTS:-svc-pipeline}"
export AUTH_OPERATOR_SUBJECTS="${AUTH_OPERATOR_SUBJECTS:-ops}"
# S3 and SQS: the local emulator unless AWS_ENDPOINT_URL points elsewhere.
use_moto=0
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  use_moto=1
  export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT:-5000}"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  export AWS_WHEREBY_ACCESS_KEY_ID=test AWS_WHEREBY_ACCESS_KEY_SECRET=test
fi
export AWS_REGION="${AWS_REGION:-us-east-1}"

ensure_postgres
ensure_rabbitmq
if [ "$use_moto" = 1 ]; then
  ensure_moto
  AWS_PROCESS_RECORDING_QUEUE_URL="$(python3 deploy/local/aws-setup.py "$RECORDING_STORAGE_AWS_BUCKET_NAME" local-recordings-uploaded)"
  export AWS_PROCESS_RECORDING_QUEUE_URL
fi
db_name="${DATABASE_URL##*/}"; db_name="${db_name%%\?*}"
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='${db_name}'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"${db_name}\""
fi

echo "building (first build takes a few minutes on 2 cores)"
cargo build --quiet --bin room-api --bin webhook-ingest --bin recording-worker --bin whereby-stand-in
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
for p in "$ROOM_API_PORT:ROOM_API_PORT" "$INGEST_PORT:WEBHOOK_INGEST_PORT" "$WORKER_PORT:WORKER_PORT"; do
  if port_open "${p%%:*}"; then echo "error: port ${p%%:*} is taken (set ${p##*:})" >&2; exit 1; fi
done
"$bin/room-api" >.run/room-api.log 2>&1 & pids+=($!)
"$bin/webhook-ingest" >.run/webhook-ingest.log 2>&1 & pids+=($!)
"$bin/recording-worker" >.run/recording-worker.log 2>&1 & pids+=($!)
wait_for_port "$ROOM_API_PORT" 30 room-api
wait_for_port "$INGEST_PORT" 30 webhook-ingest
wait_for_port "$WORKER_PORT" 30 recording-worker
token="$("$bin/room-api" dev-token alice)"
api="http://127.0.0.1:${ROOM_API_PORT}"

cat <<MSG

  room-api          $api   (log: .run/room-api.log)
  webhook-ingest    http://127.0.0.1:${INGEST_PORT}/v1/whereby   (log: .run/webhook-ingest.log)
  recording-worker  http://127.0.0.1:${WORKER_PORT}/metrics   (log: .run/recording-worker.log)
  Whereby API       $WHEREBY_API_URL$([ "$use_stand_in" = 1 ] && echo "   (local stand-in; log: .run/whereby-stand-in.log)")
  PostgreSQL        $DATABASE_URL
  RabbitMQ          amqp://127.0.0.1:5672
  S3 / SQS          $AWS_ENDPOINT_URL   (bucket $RECORDING_STORAGE_AWS_BUCKET_NAME, queue ${AWS_PROCESS_RECORDING_QUEUE_URL:-none})

Try it (a development token for user "alice", valid 24 h):

  TOKEN=$token

  # a room, and a Whereby meeting for it
  ROOM=standup-\$(date +%s)
  ROOM_ID=\$(curl -s -X POST $api/v1/rooms -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d "{\\"name\\":\\"\$ROOM\\",\\"recording_type\\":\\"cloud\\",\\"recording_trigger\\":\\"automatic-2nd-participant\\"}" \\
       | sed 's/.*"id":"\\([^"]*\\)".*/\\1/')
  # its branding: colours and a Whereby background preset (a logo: PUT .../branding/logo
  # with a PNG body); every new meeting gets it, the meeting says "branding":{"state":"applied"}
  curl -s -X PUT $api/v1/rooms/\$ROOM_ID/branding -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{"colors":{"primary":"#1f6feb","focus":"#f0883e"},"background_preset":{"palette":"grey","theme":"mountains"}}'
  MEETING=\$(curl -s -X POST $api/v1/rooms/\$ROOM/meeting -H "Authorization: Bearer \$TOKEN")
  echo "\$MEETING"
  ID=\$(echo "\$MEETING" | sed 's/.*"id":"\\([^"]*\\)".*"room_id".*/\\1/')
  WHEREBY_ID=\$(echo "\$MEETING" | sed 's/.*"whereby_meeting_id":"\\([^"]*\\)".*/\\1/')
MSG
if [ "$use_stand_in" = 1 ]; then cat <<MSG

  # Ada and Bob join through signed webhooks (the stand-in plays Whereby), Bob leaves
  curl -s -X POST http://127.0.0.1:${STAND_IN_PORT}/_stand-in/meetings/\$WHEREBY_ID/join -H 'Content-Type: application/json' -d '{"display_name":"Ada"}'
  BOB=\$(curl -s -X POST http://127.0.0.1:${STAND_IN_PORT}/_stand-in/meetings/\$WHEREBY_ID/join -H 'Content-Type: application/json' -d '{"display_name":"Bob"}' | sed 's/.*"participant_id":"\\([^"]*\\)".*/\\1/')
  curl -s -X POST http://127.0.0.1:${STAND_IN_PORT}/_stand-in/meetings/\$WHEREBY_ID/leave -H 'Content-Type: application/json' -d "{\\"participant_id\\":\\"\$BOB\\"}"
  # (the session ended: the stand-in uploads the cloud recording to the bucket)
  sleep 3

  # what the worker recorded
  curl -s $api/v1/meetings/\$ID -H "Authorization: Bearer \$TOKEN"
  curl -s $api/v1/meetings/\$ID/participants -H "Authorization: Bearer \$TOKEN"
  curl -s $api/v1/meetings/\$ID/sessions -H "Authorization: Bearer \$TOKEN"
  curl -s $api/v1/meetings/\$ID/recordings -H "Authorization: Bearer \$TOKEN"

  # the hand-off to the transcription pipeline (queue recordings.pipeline)
  rabbitmqctl list_queues name messages | grep recordings
MSG
fi
cat <<MSG

  curl -s $api/v1/openapi.json | head -c 300

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
echo "a service exited; see .run/*.log" >&2
exit 1
