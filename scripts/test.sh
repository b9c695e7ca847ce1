#!/usr/bin/env bash
# make test: a throw-away PostgreSQL + Kafka on their own ports, then every check CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# Each step says when it started (minutes into the run): a cold make test must stay under 25 min.
step() { printf '\n==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "lint (ruff check, ruff format --check)"
$BIN/ruff check libs services tests bench scripts deploy
$BIN/ruff format --check libs services tests bench scripts deploy
step "types (mypy)"
$BIN/mypy libs/ecomops_platform services
step "architecture rules (import-linter)"
$BIN/lint-imports
step "contracts (buf lint, buf breaking, generated code)"
bash scripts/check_contracts.sh
if [ -f deploy/k8s-check.sh ]; then
  step "Helm chart (lint, template, schema validation)"
  bash deploy/k8s-check.sh
fi

step "test stack (PostgreSQL 25432, Kafka 29192; throw-away)"
bash deploy/local/stack.sh up test
trap 'bash deploy/local/stack.sh down test >/dev/null 2>&1 || true' EXIT
set -a
# shellcheck disable=SC1091
source .local/test/env
set +a
export ECOMOPS_ENV=test
$BIN/ecomops topics create >/dev/null

# Two runs: each service's own suites start in-process services that live for their pytest
# session; the cross-service suites run the services as separate processes on the same
# databases and topics, and must not share the stack with those leftovers.
if [ "$#" -gt 0 ]; then
  step "pytest $*"
  $BIN/pytest -q "$@"
else
  step "pytest: platform, services, chart, the wheel"
  $BIN/pytest -q libs/tests services tests/deploy
  step "container image: build, start every service from it (make image-test)"
  bash deploy/image/test.sh
  step "pytest: cross-service suites (e2e, fault, journeys, security)"
  $BIN/pytest -q tests/e2e tests/fault tests/journeys tests/security
fi
step "all checks passed"
