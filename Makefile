# ecomops — the two commands: `make run` (local stack, foreground) and `make test` (everything CI checks).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: help run stop clean test deps tools proto proto-check lint typecheck architecture contracts k8s-check \
        pytest unit bench fuzz stack-up stack-down test-stack-up test-stack-down \
        image image-test openapi ts-client contracts-wheel

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

deps: ## install the locked Python dependencies into .venv (uv, cached under .local/)
	@bash deploy/local/bootstrap-python.sh

tools: ## helm from the Go module proxy, promtool from Debian (Go where apt-get is missing), into .local/bin (cached; buf: PyPI)
	@bash deploy/local/fetch-tools.sh helm promtool

run: deps ## start PostgreSQL, Kafka and every service (TRACING=1: and Jaeger, spans exported to it); Ctrl-C stops everything
	@TRACING="$(TRACING)" bash scripts/run.sh

stop: ## stop a local stack left running (services, Kafka, PostgreSQL)
	@bash scripts/stop.sh

clean: stop ## stop and delete the local stack's data (.local/run, .local/test)
	@rm -rf .local/run .local/test
	@echo "local stack data removed (downloads and builds kept in .local/cache)"

proto: deps ## regenerate libs/contracts from proto/
	@$(PY) scripts/gen_proto.py

test: deps tools ## lint, types, contracts, chart checks and the whole test suite on a throw-away stack
	@bash scripts/test.sh

FUZZ_EXAMPLES ?= 200
fuzz: deps tools ## schemathesis at length (FUZZ_EXAMPLES per operation, default 200) and the generated hostile-input suite, on a throw-away stack
	@PROOF_SCHEMATHESIS_EXAMPLES=$(FUZZ_EXAMPLES) bash scripts/test.sh \
		tests/security/test_schemathesis.py tests/security/test_generated_inputs.py

lint: ## ruff check and ruff format --check
	@$(BIN)/ruff check libs services tests bench scripts deploy
	@$(BIN)/ruff format --check libs services tests bench scripts deploy

typecheck: ## mypy (strict on libs/ and services/)
	@$(BIN)/mypy libs/ecomops_platform services

architecture: ## import-linter: the layer and service-boundary rules in pyproject.toml
	@$(BIN)/lint-imports

k8s-check: deps tools ## Helm chart: lint, template, offline Kubernetes schema validation, values doc
	@bash deploy/k8s-check.sh

contracts: ## buf lint, buf breaking (against the baseline), generated code up to date
	@bash scripts/check_contracts.sh

contracts-wheel: deps ## build the partners' package ecomops-contracts (generated stubs; protobuf + grpcio only) into dist/
	@UV_CACHE_DIR=$(CURDIR)/.local/cache/uv "$$(command -v uv || echo .local/tools/uv/bin/uv)" build --wheel --out-dir dist libs/contracts

openapi: deps ## write every service's OpenAPI document and the combined one into dist/openapi
	@$(BIN)/ecomops openapi --output dist/openapi

ts-client: deps ## generate TypeScript types from the OpenAPI documents and type-check clients/typescript (npm, cached)
	@bash scripts/ts_client_check.sh

unit: ## unit tests only (no stack needed)
	@$(BIN)/pytest -q -m "not integration"

bench: deps ## load benchmark (vegeta/ghz, services as processes, baselines, per-checkout budget; throw-away stack)
	@bash scripts/bench.sh $(BENCH_ARGS)

image: ## build the container image with podman (chroot isolation; base images bootstrapped locally if needed)
	@bash deploy/image/build.sh

image-test: deps ## build the image, then start every service from it (root, podman; needs an exported stack)
	@bash deploy/image/test.sh
