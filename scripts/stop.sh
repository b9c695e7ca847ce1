#!/usr/bin/env bash
# make stop: stop services started by `make run` and the local stack behind them.
set -uo pipefail
cd "$(dirname "$0")/.."
pkill -TERM -f "\.venv/bin/ecomops (run|serve)" 2>/dev/null && sleep 2
bash deploy/local/stack.sh down run
