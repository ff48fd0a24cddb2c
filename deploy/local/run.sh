#!/usr/bin/env bash
# `make run`: the whole system on this machine. Starts PostgreSQL and RabbitMQ if
# they are down, the S3/SQS emulator, the Whereby stand-in (unless WHEREBY_API_URL
# points elsewhere; it also sends signed webhooks to webhook-ingest), applies
# migrations, starts room-api, webhook-ingest and recording-worker, writes their
# settings to .run/env for a second shell, and prints a walk-through. Ctrl-C stops
# everything it started. Settings: the environment, then ./.env, then
# deploy/local/defaults.sh.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../.."

# Ctrl-C must reach this script and its services, not make: in a process group of
# its own (the terminal's foreground group), make only sees how it ended.
if [ -t 0 ] && [ -z "${WHEREBY_RUN_OWN_GROUP:-}" ]; then
  set -m
  WHEREBY_RUN_OWN_GROUP=1 "$self" "$@" &
  fg %1 >/dev/null
  exit $?
fi

. deploy/local/services.sh
. deploy/local/defaults.sh

pids=()
names=()
stopping=0
stop() {
  stopping=1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Only our services: the emulator is a child too, stopped by stop_what_we_started.
  [ "${#pids[@]}" -gt 0 ] && { wait "${pids[@]}" 2>/dev/null || true; }
  pids=()
  stop_what_we_started
}
goodbye() { echo; stop; echo "stopped ${names[*]:-nothing}; bye"; exit 0; }
trap goodbye INT TERM
trap stop EXIT

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

if [ -x "$CARGO_TARGET_DIR/debug/room-api" ]; then
  echo "building (seconds when little changed)"
else
  echo "building the services for the first time: about 10 minutes on 2 cores (cargo shows its progress)"
fi
build_started=$(date +%s)
cargo build --bin room-api --bin webhook-ingest --bin recording-worker --bin whereby-stand-in --bin whereby-ops
echo "built in $(( $(date +%s) - build_started )) s"
bin="$CARGO_TARGET_DIR/debug"
mkdir -p .run

start() { # name [args]: in the background, logging to .run/<name>.log
  "$bin/$1" "${@:2}" >".run/$1.log" 2>&1 &
  pids+=($!)
  names+=("$1")
}
if [ "$use_stand_in" = 1 ]; then
  if port_open "$STAND_IN_PORT"; then echo "error: port $STAND_IN_PORT is taken (set WHEREBY_STAND_IN_PORT)" >&2; exit 1; fi
  start whereby-stand-in
  wait_for_port "$STAND_IN_PORT" 15 "the Whereby stand-in"
fi
"$bin/room-api" migrate
for p in "$ROOM_API_PORT:ROOM_API_PORT" "$INGEST_PORT:WEBHOOK_INGEST_PORT" "$WORKER_PORT:WORKER_PORT"; do
  if port_open "${p%%:*}"; then echo "error: port ${p%%:*} is taken (set ${p##*:})" >&2; exit 1; fi
done
start room-api
start webhook-ingest
start recording-worker
wait_for_port "$ROOM_API_PORT" 30 room-api
wait_for_port "$INGEST_PORT" 30 webhook-ingest
wait_for_port "$WORKER_PORT" 30 recording-worker
(umask 077 && rm -f .run/env && write_local_env .run/env)
token="$("$bin/room-api" dev-token alice)"
api="http://127.0.0.1:${ROOM_API_PORT}"
stand_in="http://127.0.0.1:${STAND_IN_PORT}"

cat <<MSG

  room-api          $api   (log: .run/room-api.log)
  webhook-ingest    http://127.0.0.1:${INGEST_PORT}/v1/whereby   (log: .run/webhook-ingest.log)
  recording-worker  http://127.0.0.1:${WORKER_PORT}/readyz   (log: .run/recording-worker.log)
  Whereby API       $WHEREBY_API_URL$([ "$use_stand_in" = 1 ] && echo "   (local stand-in; log: .run/whereby-stand-in.log)")
  PostgreSQL        $DATABASE_URL
  RabbitMQ          amqp://127.0.0.1:5672
  S3 / SQS          $AWS_ENDPOINT_URL   (bucket $RECORDING_STORAGE_AWS_BUCKET_NAME, queue ${AWS_PROCESS_RECORDING_QUEUE_URL:-none})

In another shell, the same settings and tools:

  . .run/env                      # these settings, and the built binaries on PATH
  whereby-ops doctor              # checks every setting and dependency
  make -s token USER=bob          # a bearer token for another user (needs only AUTH_JWT_SECRET)
  room-api --help                 # every binary explains itself and its settings

Try it. A development token for user "alice" (valid 24 h):

  TOKEN=$token

  # 1. A room: its name is how you address it (its id works too), and its recording
  #    settings: Whereby records to our S3 bucket once a second person joins.
  ROOM=standup-\$(date +%s)
  curl -s -X POST $api/v1/rooms -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d "{\\"name\\":\\"\$ROOM\\",\\"recording_type\\":\\"cloud\\",\\"recording_trigger\\":\\"automatic-2nd-participant\\"}"

  # 2. Its branding: colours and a Whereby background preset (a logo: PUT
  #    .../branding/logo with a PNG body). Every new meeting of the room gets it;
  #    the meeting then says "branding":{"state":"applied"}.
  curl -s -X PUT $api/v1/rooms/\$ROOM/branding -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{"colors":{"primary":"#1f6feb","focus":"#f0883e"},"background_preset":{"palette":"grey","theme":"mountains"}}'

  # 3. A meeting: room-api asks Whereby for one (with cloud recording into our
  #    bucket) and reuses it until it ends. Asking again gives the same meeting.
  MEETING=\$(curl -s -X POST $api/v1/rooms/\$ROOM/meeting -H "Authorization: Bearer \$TOKEN")
  echo "\$MEETING"
  ID=\$(echo "\$MEETING" | sed 's/.*"id":"\\([^"]*\\)".*"room_id".*/\\1/')
  WHEREBY_ID=\$(echo "\$MEETING" | sed 's/.*"whereby_meeting_id":"\\([^"]*\\)".*/\\1/')
MSG
if [ "$use_stand_in" = 1 ]; then cat <<MSG

  # 4. People join and leave. Whereby tells us by signed webhooks; here the stand-in
  #    plays Whereby: it sends them to webhook-ingest, which checks the signature and
  #    queues them; recording-worker applies each exactly once to Postgres.
  #    Ada joins (alone: in Whereby's terms no session yet, a session needs two
  #    people), Bob joins (the session starts, and with it the recording), Bob
  #    leaves (one person is left, so the session ends and the stand-in uploads
  #    the recording to the bucket, as Whereby's cloud recorder would).
  curl -s -X POST $stand_in/_stand-in/meetings/\$WHEREBY_ID/join -H 'Content-Type: application/json' -d '{"display_name":"Ada"}'
  BOB=\$(curl -s -X POST $stand_in/_stand-in/meetings/\$WHEREBY_ID/join -H 'Content-Type: application/json' -d '{"display_name":"Bob"}' | sed 's/.*"participant_id":"\\([^"]*\\)".*/\\1/')
  curl -s -X POST $stand_in/_stand-in/meetings/\$WHEREBY_ID/leave -H 'Content-Type: application/json' -d "{\\"participant_id\\":\\"\$BOB\\"}"
  sleep 3

  # 5. What the worker recorded. The meeting: num_clients 1 (Ada is still in).
  #    Participants: Ada "joined" with no session, Bob "left". Whereby's rule: a
  #    session exists only while two or more people are in the room, so Ada, who
  #    joined alone, joined outside any session; the session began when Bob joined
  #    and ended when he left, leaving Ada alone. Sessions: that one. Recordings:
  #    the upload S3 announced on SQS, recorded and handed to the pipeline.
  curl -s $api/v1/meetings/\$ID -H "Authorization: Bearer \$TOKEN"
  curl -s $api/v1/meetings/\$ID/participants -H "Authorization: Bearer \$TOKEN"
  curl -s $api/v1/meetings/\$ID/sessions -H "Authorization: Bearer \$TOKEN"
  curl -s $api/v1/meetings/\$ID/recordings -H "Authorization: Bearer \$TOKEN"

  # 6. The hand-off to the transcription pipeline: a message on recordings.pipeline.
  rabbitmqctl list_queues name messages | grep recordings
MSG
fi
cat <<MSG

  # The whole API, as an OpenAPI document:
  curl -s $api/v1/openapi.json | head -c 300

Press Ctrl-C to stop everything this started.
MSG
set +e
wait -n "${pids[@]}"
[ "$stopping" = 1 ] && exit 0
echo "a service exited; see .run/*.log" >&2
exit 1
