#!/usr/bin/env bash
# `make token USER=bob`: a development bearer token for room-api, signed with the
# local system's AUTH_JWT_SECRET (the environment, ./.env, or the local default).
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/defaults.sh
cargo build --quiet --bin room-api
exec "$CARGO_TARGET_DIR/debug/room-api" dev-token "${1:-alice}" "${2:-24}"
