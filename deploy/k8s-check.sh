#!/usr/bin/env bash
# Offline checks of the Helm chart (called by `make test`):
#   1. helm lint --strict with the defaults and with each k8s/examples/*.yaml
#   2. helm template of the same into .local/k8s-check/
#   3. every rendered manifest validated against the Kubernetes JSON schemas (strict,
#      kubernetes-validate; ServiceMonitor, PrometheusRule, HTTPRoute and GRPCRoute against local
#      schemas), for the oldest and newest Kubernetes versions we support
#   4. the alert rules: `promtool check rules` on every rendered PrometheusRule and
#      `promtool test rules` with tests/deploy/promtool/alerts-test.yaml
#   5. the values reference in docs/deploy.md is up to date with values.schema.json
# Environment: HELM (default .local/bin/helm, else helm on PATH), PROMTOOL (default
# .local/bin/promtool, else promtool on PATH; fetched by deploy/local/fetch-tools.sh promtool),
# PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=k8s/ecomops
OUT=.local/k8s-check
KUBE_MIN=1.27.0
KUBE_MAX=1.37.0

HELM=${HELM:-.local/bin/helm}
if [[ ! -x $HELM ]]; then
  HELM=$(command -v helm || true)
fi
if [[ -z $HELM ]]; then
  echo "k8s-check: helm not found (build it with deploy/local/fetch-tools.sh or set HELM)" >&2
  exit 1
fi
PROMTOOL=${PROMTOOL:-.local/bin/promtool}
if [[ ! -x $PROMTOOL ]]; then
  PROMTOOL=$(command -v promtool || true)
fi
if [[ -z $PROMTOOL ]]; then
  echo "k8s-check: promtool not found (fetch it with deploy/local/fetch-tools.sh promtool or set PROMTOOL)" >&2
  exit 1
fi
PYTHON=${PYTHON:-.venv/bin/python}
if [[ ! -x $PYTHON ]]; then
  PYTHON=$(command -v python3)
fi
if ! "$PYTHON" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
  echo "k8s-check: $PYTHON lacks kubernetes-validate / pyyaml (dev dependencies: uv sync)" >&2
  exit 1
fi

rm -rf "$OUT"
mkdir -p "$OUT"

cases=("defaults:")
for f in k8s/examples/*.yaml; do
  cases+=("$(basename "$f" .yaml):$f")
done
# The alert rules with their default thresholds (what the promtool unit tests assume).
echo "metrics: {prometheusRule: {enabled: true}}" >"$OUT/rules-defaults.values.yaml"
cases+=("rules-defaults:$OUT/rules-defaults.values.yaml")

rendered=()
for case in "${cases[@]}"; do
  name=${case%%:*}
  file=${case#*:}
  args=()
  [[ -n $file ]] && args=(-f "$file")
  echo "k8s-check: $name: helm lint"
  "$HELM" lint "$CHART" --strict --kube-version "$KUBE_MIN" "${args[@]}" >"$OUT/$name.lint.txt" 2>&1 \
    || { cat "$OUT/$name.lint.txt" >&2; exit 1; }
  echo "k8s-check: $name: helm template"
  "$HELM" template ecomops "$CHART" --namespace ecomops --kube-version "$KUBE_MIN" "${args[@]}" \
    >"$OUT/$name.yaml"
  rendered+=("$OUT/$name.yaml")
done

echo "k8s-check: validating rendered manifests against Kubernetes $KUBE_MIN and $KUBE_MAX schemas"
"$PYTHON" tests/deploy/k8s_validate.py --kube-version "$KUBE_MIN" --kube-version "$KUBE_MAX" "${rendered[@]}"

echo "k8s-check: promtool check rules / test rules"
mapfile -t rule_files < <("$PYTHON" tests/deploy/prom_rules.py "$OUT/promtool" "${rendered[@]}" \
  --for-tests "$OUT/rules-defaults.yaml")
[[ ${#rule_files[@]} -gt 0 ]] || { echo "k8s-check: no PrometheusRule rendered" >&2; exit 1; }
"$PROMTOOL" check rules "${rule_files[@]}"
"$PROMTOOL" test rules "$OUT/promtool/alerts-test.yaml"

"$PYTHON" deploy/gen_values_doc.py --check
echo "k8s-check: ok"
