"""Validate rendered Kubernetes manifests offline against the Kubernetes JSON schemas.

The schemas are the ones bundled by the `kubernetes-validate` package (strict mode: unknown
fields are errors). Custom resources the chart may render (ServiceMonitor) are checked against
a small local schema of the fields the chart uses, since no cluster is there to serve the CRD.

    python tests/deploy/k8s_validate.py [--kube-version 1.33.0 ...] rendered.yaml [...]

Exit status 0 when every document is valid, 1 otherwise (each error is printed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

# The fields of monitoring.coreos.com/v1 ServiceMonitor that the chart renders (subset of the
# Prometheus Operator CRD, closed with additionalProperties: false so typos are caught).
_DURATION = {
    "type": "string",
    "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
    "(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "maxLength": 253},
                "namespace": {"type": "string"},
                "labels": _LABELS,
                "annotations": _LABELS,
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": _LABELS, "matchExpressions": {"type": "array"}},
                },
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["string", "integer"]},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}

LOCAL_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SCHEMA,
}

DEFAULT_KUBE_VERSIONS = ("1.27.0", "1.37.0")


def load_documents(text: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _describe(doc: dict[str, Any]) -> str:
    name = (doc.get("metadata") or {}).get("name", "?")
    return f"{doc.get('kind', '?')}/{name}"


def validate_documents(
    docs: Iterable[dict[str, Any]], kube_versions: Iterable[str] = DEFAULT_KUBE_VERSIONS
) -> Iterator[str]:
    """Yield one message per invalid document (nothing when all are valid)."""
    import jsonschema
    import kubernetes_validate

    versions = list(kube_versions)
    for doc in docs:
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            yield f"not a Kubernetes object: {str(doc)[:80]}"
            continue
        local = LOCAL_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if local is not None:
            for err in jsonschema.Draft202012Validator(local).iter_errors(doc):
                path = "/".join(str(p) for p in err.absolute_path)
                yield f"{_describe(doc)} (local CRD schema) at /{path}: {err.message}"
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                path = "/".join(str(p) for p in err.path)
                yield f"{_describe(doc)} (Kubernetes {version}) at /{path}: {err.message}"
            except kubernetes_validate.SchemaNotFoundError as err:
                yield f"{_describe(doc)}: {err.message}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument(
        "--kube-version",
        action="append",
        dest="kube_versions",
        help="Kubernetes version(s) to validate against "
        f"(default: {', '.join(DEFAULT_KUBE_VERSIONS)})",
    )
    args = parser.parse_args(argv)
    versions = args.kube_versions or list(DEFAULT_KUBE_VERSIONS)
    failed = False
    for path in args.files:
        docs = load_documents(path.read_text())
        errors = list(validate_documents(docs, versions))
        for error in errors:
            print(f"{path}: {error}", file=sys.stderr)
        failed = failed or bool(errors)
        status = "FAILED" if errors else "ok"
        print(f"{path}: {len(docs)} manifests, Kubernetes {', '.join(versions)}: {status}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
