#!/usr/bin/env bash
# Contracts: buf lint, buf breaking against the last released baseline, generated code fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=.venv/bin/buf  # buf-bin from PyPI, pinned in the dev dependency group
$BUF lint
baseline=$(grep -v '^#' proto/BREAKING_BASELINE 2>/dev/null | tr -d '[:space:]' || true)
if [ -n "$baseline" ]; then
  $BUF breaking --against ".git#ref=${baseline}"
  echo "buf breaking: compatible with ${baseline}"
else
  echo "buf breaking: no baseline release yet (proto/BREAKING_BASELINE is empty)"
fi
.venv/bin/python scripts/gen_proto.py --check
