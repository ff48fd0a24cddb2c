# Sourced by the local run, test, bench and chaos scripts: make sure the machine's
# PostgreSQL and RabbitMQ are up (starting them the way this machine kind starts
# them) and the S3/SQS emulator runs. `stop_what_we_started` (run it on EXIT)
# stops the emulator if this script started it, and says that PostgreSQL and
# RabbitMQ, the machine's own services, keep running if it started them.

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # port seconds name
  for _ in $(seq "$2"); do port_open "$1" && return 0; sleep 1; done
  echo "error: $3 is not listening on 127.0.0.1:$1" >&2
  return 1
}

STARTED_MACHINE_SERVICES=()
MOTO_PID=""

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -n | tail -1)" main start
  STARTED_MACHINE_SERVICES+=(PostgreSQL)
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
  echo "error: PostgreSQL did not start" >&2
  return 1
}

ensure_rabbitmq() {
  if port_open 5672; then return 0; fi
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  STARTED_MACHINE_SERVICES+=(RabbitMQ)
  wait_for_port 5672 90 RabbitMQ
}

# The S3/SQS emulator (moto): installed from PyPI when missing, state in memory.
MOTO_PORT="${MOTO_PORT:-5000}"
ensure_moto() {
  if port_open "$MOTO_PORT"; then return 0; fi
  if ! command -v moto_server >/dev/null 2>&1; then
    echo "installing the S3/SQS emulator (moto)"
    python3 -m pip install --quiet 'moto[server]'
    hash -r
  fi
  echo "starting the S3/SQS emulator on 127.0.0.1:$MOTO_PORT"
  mkdir -p "${RUN_DIR:-.run}"
  nohup moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"${RUN_DIR:-.run}/moto.log" 2>&1 &
  MOTO_PID=$!
  wait_for_port "$MOTO_PORT" 60 "the S3/SQS emulator"
}

stop_what_we_started() {
  if [ -n "$MOTO_PID" ]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    echo "stopped the S3/SQS emulator it started"
    MOTO_PID=""
  fi
  if [ "${#STARTED_MACHINE_SERVICES[@]}" -gt 0 ]; then
    echo "left running: ${STARTED_MACHINE_SERVICES[*]} (the machine's own services, started because they were down)"
    STARTED_MACHINE_SERVICES=()
  fi
}
