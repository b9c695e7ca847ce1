#!/usr/bin/env bash
# make bench: a throw-away stack (PostgreSQL 58432, Kafka 59392), then the load benchmark
# (bench/load_bench.py; `make bench BENCH_ARGS="--all"` or names for the others).
set -euo pipefail
cd "$(dirname "$0")/.."
# The compiled load generators (built once from the Go module proxy, cached in .local/bin).
bash deploy/local/fetch-tools.sh vegeta ghz
bash deploy/local/stack.sh up bench
trap 'bash deploy/local/stack.sh down bench >/dev/null 2>&1 || true' EXIT
set -a
# shellcheck disable=SC1091
source .local/bench/env
set +a
.venv/bin/ecomops topics create >/dev/null
.venv/bin/python -m bench.run "$@"
