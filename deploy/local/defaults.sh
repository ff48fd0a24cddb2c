# Sourced by the local scripts: the settings of the local system, each taken from
# the environment, then ./.env, then the local defaults below (development values:
# nothing here is a production secret). `make run` writes them to .run/env for a
# second shell.
# .env fills in what the environment leaves unset; the environment wins, as in the
# services' own settings.
if [ -f .env ]; then
  environment_before="$(export -p)"
  set -a; . ./.env; set +a
  eval "$environment_before"
  unset environment_before
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/whereby-target}"
ROOM_API_PORT="${ROOM_API_PORT:-8080}"
INGEST_PORT="${WEBHOOK_INGEST_PORT:-8081}"
WORKER_PORT="${WORKER_PORT:-8082}"
STAND_IN_PORT="${WHEREBY_STAND_IN_PORT:-8090}"
use_stand_in=0
if [ -z "${WHEREBY_API_URL:-}" ] || [ "${WHEREBY_API_URL}" = "http://127.0.0.1:${STAND_IN_PORT}/v1" ]; then
  use_stand_in=1
  export WHEREBY_API_URL="http://127.0.0.1:${STAND_IN_PORT}/v1"
  export WHEREBY_STAND_IN_ADDR="127.0.0.1:${STAND_IN_PORT}"
fi
export WHEREBY_API_KEY="${WHEREBY_API_KEY:-local-whereby-api-key}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/whereby}"
export ROOM_API_ADDR="${ROOM_API_ADDR:-127.0.0.1:${ROOM_API_PORT}}"
export AUTH_JWT_SECRET="${AUTH_JWT_SECRET:-local-development-secret-change-me-0123456789}"
export RECORDING_STORAGE_AWS_BUCKET_NAME="${RECORDING_STORAGE_AWS_BUCKET_NAME:-local-recordings}"
export WHEREBY_WEBHOOK_SECRET="${WHEREBY_WEBHOOK_SECRET:-local-webhook-secret}"
export WEBHOOK_INGEST_ADDR="${WEBHOOK_INGEST_ADDR:-127.0.0.1:${INGEST_PORT}}"
export WORKER_ADDR="${WORKER_ADDR:-127.0.0.1:${WORKER_PORT}}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export WHEREBY_STAND_IN_WEBHOOK_URL="${WHEREBY_STAND_IN_WEBHOOK_URL:-http://127.0.0.1:${INGEST_PORT}/v1/whereby}"
export AUTH_SERVICE_SUBJECTS="${AUTH_SERVICE_SUBJECTS:-svc-pipeline}"
export AUTH_OPERATOR_SUBJECTS="${AUTH_OPERATOR_SUBJECTS:-ops}"
# S3 and SQS: the local emulator unless AWS_ENDPOINT_URL points elsewhere.
use_moto=0
if [ -z "${AWS_ENDPOINT_URL:-}" ] || [ "${AWS_ENDPOINT_URL}" = "http://127.0.0.1:${MOTO_PORT:-5000}" ]; then
  use_moto=1
  export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT:-5000}"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  export AWS_WHEREBY_ACCESS_KEY_ID=test AWS_WHEREBY_ACCESS_KEY_SECRET=test
fi
export AWS_WHEREBY_ACCESS_KEY_ID="${AWS_WHEREBY_ACCESS_KEY_ID:-local-access-key-id}"
export AWS_WHEREBY_ACCESS_KEY_SECRET="${AWS_WHEREBY_ACCESS_KEY_SECRET:-local-access-key-secret}"
export AWS_REGION="${AWS_REGION:-us-east-1}"

# The settings above (and the queue URL, once known) as a file a second shell can
# source: `. .run/env`.
LOCAL_SETTINGS=(CARGO_TARGET_DIR WHEREBY_API_URL WHEREBY_STAND_IN_ADDR WHEREBY_API_KEY DATABASE_URL
  ROOM_API_ADDR AUTH_JWT_SECRET RECORDING_STORAGE_AWS_BUCKET_NAME WHEREBY_WEBHOOK_SECRET
  WEBHOOK_INGEST_ADDR WORKER_ADDR AMQP_URL WHEREBY_STAND_IN_WEBHOOK_URL AUTH_SERVICE_SUBJECTS
  AUTH_OPERATOR_SUBJECTS AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  AWS_WHEREBY_ACCESS_KEY_ID AWS_WHEREBY_ACCESS_KEY_SECRET AWS_REGION AWS_PROCESS_RECORDING_QUEUE_URL)
write_local_env() { # file
  {
    echo "# The settings of the local system \`make run\` started ($(date -u +%FT%TZ))."
    echo "# Local development values only. In another shell: . .run/env"
    for name in "${LOCAL_SETTINGS[@]}"; do
      [ -n "${!name:-}" ] && printf "export %s=%q\n" "$name" "${!name}"
    done
    echo "export PATH=\"\$CARGO_TARGET_DIR/debug:\$PATH\""
  } >"$1"
}
