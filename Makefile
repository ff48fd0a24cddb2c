# The two commands a newcomer needs: `make run` and `make test`.
CARGO_TARGET_DIR ?= $(HOME)/.cache/whereby-target
export CARGO_TARGET_DIR

.PHONY: run test lint fmt build migrate stand-in chaos bench

## run: the whole system locally (PostgreSQL, RabbitMQ, Whereby stand-in, room-api)
run:
	deploy/local/run.sh

## test: every test, against real PostgreSQL and the Whereby stand-in
test:
	deploy/local/test.sh

## lint: formatting, clippy with warnings as errors, dependency rules
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	.ci/check-deps

fmt:
	cargo fmt --all

build:
	cargo build --workspace --bins

## migrate: apply pending migrations to DATABASE_URL
migrate:
	cargo run --quiet --bin room-api -- migrate

## stand-in: only the Whereby stand-in, on WHEREBY_STAND_IN_ADDR (127.0.0.1:8090)
stand-in:
	cargo run --quiet --bin whereby-stand-in

## chaos: the fault suite (real processes; private RabbitMQ and PostgreSQL instances)
chaos:
	deploy/local/chaos.sh

## bench: the load benchmark against release builds; report in $(BENCH_OUT)
BENCH_OUT ?= bench-results
bench:
	deploy/local/bench.sh $(BENCH_OUT)
