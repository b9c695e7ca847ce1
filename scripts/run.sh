#!/usr/bin/env bash
# make run: PostgreSQL + Kafka under .local/run (data kept), then every built service in the
# foreground; Ctrl-C stops the services, Kafka and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# The console's page (npm, cached; rebuilt only when its sources change). Without npm the
# console still starts and says its page is not built.
bash services/console/build.sh || echo "run.sh: the console's page could not be built (npm?); its API still runs" >&2
bash deploy/local/stack.sh up run
cleanup() {
  echo "stopping Kafka and PostgreSQL..."
  bash deploy/local/stack.sh down run || true
}
trap cleanup EXIT
set -a
# shellcheck disable=SC1091
source .local/run/env
set +a
.venv/bin/ecomops run "$@"
