#!/usr/bin/env bash
# uvicorn on asyncio + h11 vs uvloop + httptools, the same micro app (bench/platform_micro.py),
# loaded by vegeta (a compiled generator, its own process) at a fixed number of workers.
# Usage (ECOMOPS_JWT_SECRET set, e.g. the dev stack env): bash bench/serve_compare.sh [seconds] [workers]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-10}"
WORKERS="${2:-16}"
VEGETA="${VEGETA:-.local/bin/vegeta}"
PORT=$((20000 + RANDOM % 5000))
for round in 1 2; do
    for cfg in "asyncio h11" "uvloop httptools"; do
        set -- $cfg
        .venv/bin/python -m bench.platform_micro serve "$PORT" "$1" "$2" &
        pid=$!
        up=0
        for _ in $(seq 100); do
            if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; then up=1; break; fi
            sleep 0.1
        done
        [[ $up == 1 ]] || { echo "the server did not start" >&2; exit 1; }
        echo "GET http://127.0.0.1:$PORT/v1/items/abc" |
            "$VEGETA" attack -rate=0 -workers="$WORKERS" -max-workers="$WORKERS" -duration="${SECONDS_EACH}s" |
            "$VEGETA" report -type=text | sed -n '1,4p' | sed "s/^/round $round $1+$2: /"
        echo "round $round $1+$2: load average $(cut -d' ' -f1-3 /proc/loadavg)"
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
done
