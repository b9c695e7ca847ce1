#!/usr/bin/env bash
# make run: PostgreSQL + Kafka under .local/run (data kept), then every built service in the
# foreground; Ctrl-C stops the services, Kafka and PostgreSQL.
#
# make run TRACING=1 (TRACING=1 bash scripts/run.sh): also Jaeger v2 (built once from the Go
# module proxy by deploy/local/fetch-tools.sh, cached in .local/bin), receiving OTLP on
# 127.0.0.1:4317; the services get OTEL_EXPORTER_OTLP_ENDPOINT and export every span to it.
# JAEGER_OTLP_PORT / JAEGER_QUERY_PORT move its ports (default 4317 / 16686).
set -euo pipefail
cd "$(dirname "$0")/.."
tracing="${TRACING:-}"
[[ "$tracing" == "0" || "$tracing" == "false" ]] && tracing=""
if [[ -n "$tracing" ]]; then
  bash deploy/local/fetch-tools.sh jaeger
fi
# The console's page (npm, cached; rebuilt only when its sources change). Without npm the
# console still starts and says its page is not built.
bash services/console/build.sh || echo "run.sh: the console's page could not be built (npm?); its API still runs" >&2
bash deploy/local/stack.sh up run
jaeger_pid=""
cleanup() {
  if [[ -n "$jaeger_pid" ]]; then
    echo "stopping Jaeger..."
    kill "$jaeger_pid" 2>/dev/null || true
    wait "$jaeger_pid" 2>/dev/null || true
  fi
  echo "stopping Kafka and PostgreSQL..."
  bash deploy/local/stack.sh down run || true
}
trap cleanup EXIT
set -a
# shellcheck disable=SC1091
source .local/run/env
set +a
if [[ -n "$tracing" ]]; then
  otlp_port="${JAEGER_OTLP_PORT:-4317}" query_port="${JAEGER_QUERY_PORT:-16686}"
  config=".local/run/jaeger.yaml"
  # The all-in-one configuration (memory store), on loopback and the chosen ports.
  cat >"$config" <<YAML
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:0
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${query_port}
    grpc:
      endpoint: 127.0.0.1:0
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${otlp_port}
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
  .local/bin/jaeger --config "file:$config" >.local/run/jaeger.log 2>&1 &
  jaeger_pid=$!
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$otlp_port") 2>/dev/null; then break; fi
    kill -0 "$jaeger_pid" 2>/dev/null || { echo "Jaeger did not start: see .local/run/jaeger.log" >&2; exit 1; }
    sleep 0.2
  done
  export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:${otlp_port}"
  echo "tracing: Jaeger at http://127.0.0.1:${query_port} (query API: /api/services, /api/traces?service=ecomops-order; log .local/run/jaeger.log); OTLP on 127.0.0.1:${otlp_port}"
fi
.venv/bin/ecomops run "$@"
