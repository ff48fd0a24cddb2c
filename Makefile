# The two commands a newcomer needs: `make run` and `make test`.
# Recipes source bash scripts (deploy/local/defaults.sh); /bin/sh may be dash.
SHELL := bash
CARGO_TARGET_DIR ?= $(HOME)/.cache/whereby-target
export CARGO_TARGET_DIR

.PHONY: run test lint fmt build migrate stand-in chaos cluster-chaos bench token fuzz-api

## run: the whole system locally (PostgreSQL, RabbitMQ, the S3/SQS emulator, the
## Whereby stand-in, the three services); Ctrl-C stops what it started
run:
	@deploy/local/run.sh

## token: a development bearer token for USER (make -s token USER=bob)
token:
	@deploy/local/token.sh "$(USER)"

## test: every test, against real PostgreSQL and the Whereby stand-in
test:
	@deploy/local/test.sh

## lint: formatting, clippy with warnings as errors, dependency rules
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	.ci/check-deps

fmt:
	cargo fmt --all

build:
	cargo build --workspace --bins

## migrate: apply pending migrations to DATABASE_URL (the local one by default)
migrate:
	@. deploy/local/defaults.sh && cargo run --quiet --bin room-api -- migrate

## stand-in: only the Whereby stand-in, on WHEREBY_STAND_IN_ADDR (127.0.0.1:8090)
stand-in:
	cargo run --quiet --bin whereby-stand-in

## chaos: the fault suite (real processes; private RabbitMQ and PostgreSQL instances)
chaos:
	@deploy/local/chaos.sh chaos

## cluster-chaos: the fault suite on a three-node RabbitMQ cluster, a PostgreSQL
## primary and standby, and two replicas of each service (private instances)
cluster-chaos:
	@deploy/local/chaos.sh cluster-chaos

## bench: the load benchmark against release builds; report in $(BENCH_OUT).
## BENCH_ARGS=--cluster adds the same phases on cluster engines, side by side.
BENCH_OUT ?= bench-results
BENCH_ARGS ?=
bench:
	@deploy/local/bench.sh $(BENCH_OUT) $(BENCH_ARGS)

## fuzz-api: the property-based API fuzzer (schemathesis) against a fresh room-api
fuzz-api:
	@deploy/local/fuzz-api.sh
