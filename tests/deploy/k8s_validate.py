"""Validate rendered Kubernetes manifests offline against the Kubernetes JSON schemas.

The schemas are the ones bundled by the `kubernetes-validate` package (strict mode: unknown
fields are errors). Custom resources the chart may render (ServiceMonitor, PrometheusRule, the
Gateway API's HTTPRoute and GRPCRoute) are checked against small local schemas of the fields the
chart uses, since no cluster is there to serve the CRDs.

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

_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
}
_PROM_DURATION = {"type": "string", "pattern": "^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}

# monitoring.coreos.com/v1 PrometheusRule: the fields the chart renders (the PromQL itself is
# checked by `promtool check rules` in deploy/k8s-check.sh).
PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _PROM_DURATION,
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                                    "properties": {
                                        "record": {"type": "string", "minLength": 1},
                                        "alert": {"type": "string", "minLength": 1},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": _PROM_DURATION,
                                        "keep_firing_for": _PROM_DURATION,
                                        "labels": _LABELS,
                                        "annotations": _LABELS,
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}

# gateway.networking.k8s.io/v1 HTTPRoute and GRPCRoute (Gateway API v1.1+, standard channel):
# the fields the chart renders, with the CRDs' own limits (16 rules, 16 hostnames, 32 parents).
_HOSTNAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
_PARENT_REF = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "namespace": {"type": "string"},
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "sectionName": {"type": "string"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    },
}
_BACKEND_REF = {
    "type": "object",
    "required": ["name", "port"],
    "additionalProperties": False,
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "namespace": {"type": "string"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "weight": {"type": "integer", "minimum": 0},
    },
}


def _route_schema(kind: str, match: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["parentRefs", "rules"],
                "additionalProperties": False,
                "properties": {
                    "parentRefs": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 32,
                        "items": _PARENT_REF,
                    },
                    "hostnames": {"type": "array", "maxItems": 16, "items": _HOSTNAME},
                    "rules": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 16,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "matches": {"type": "array", "maxItems": 64, "items": match},
                                "backendRefs": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": 16,
                                    "items": _BACKEND_REF,
                                },
                            },
                        },
                    },
                },
            },
        },
    }


HTTP_ROUTE_SCHEMA = _route_schema(
    "HTTPRoute",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "path": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "value"],
                "properties": {
                    "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                    "value": {"type": "string", "pattern": "^/", "maxLength": 1024},
                },
            },
            "method": {"enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]},
        },
    },
)
GRPC_ROUTE_SCHEMA = _route_schema(
    "GRPCRoute",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "method": {
                "type": "object",
                "additionalProperties": False,
                "anyOf": [{"required": ["service"]}, {"required": ["method"]}],
                "properties": {
                    "type": {"enum": ["Exact", "RegularExpression"]},
                    # A fully qualified service name: no leading slash, dotted identifiers.
                    "service": {
                        "type": "string",
                        "maxLength": 1024,
                        "pattern": r"^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$",
                    },
                    "method": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z_0-9]*$"},
                },
            },
        },
    },
)

LOCAL_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SCHEMA,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE_SCHEMA,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTP_ROUTE_SCHEMA,
    ("gateway.networking.k8s.io/v1", "GRPCRoute"): GRPC_ROUTE_SCHEMA,
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
