"""The OpenAPI documents of every service, and one combined document, for ``ecomops openapi``
(front ends and generated clients). Rendering a document connects to nothing."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import registry

_REF_PREFIX = "#/components/schemas/"


def service_document(name: str) -> dict[str, Any]:
    """The OpenAPI document the service ``name`` serves at ``/openapi.json``.

    Rendered offline: settings a document does not depend on (database URL, token secret) are
    given placeholders when the environment lacks them; nothing is connected to.
    """
    info = registry.info(name)
    placeholders = {
        f"{name.upper()}_DATABASE_URL": "postgresql+asyncpg://openapi@localhost:1/openapi",
        "ECOMOPS_ENV": "local",
    }
    if not (os.environ.get("ECOMOPS_JWT_SECRET") or os.environ.get("ECOMOPS_JWT_JWKS_URL")):
        placeholders["ECOMOPS_JWT_SECRET"] = secrets.token_urlsafe(48)
    saved = {k: os.environ.get(k) for k in placeholders}
    for key, value in placeholders.items():
        os.environ.setdefault(key, value)
    try:
        doc: dict[str, Any] = info.spec.create().build_app().openapi()
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
    copy: dict[str, Any] = json.loads(json.dumps(doc))  # a copy the caller may change
    return copy


def _rename_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX):
                name = value[len(_REF_PREFIX) :]
                out[key] = _REF_PREFIX + renames.get(name, name)
            else:
                out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def combine(documents: Mapping[str, dict[str, Any]], version: str) -> dict[str, Any]:
    """One document of every service's ``/v1/`` operations (the probes stay per service).

    Each operation is tagged with its service and keeps its operation id (which must be
    unique across services); ``x-ecomops-service`` names the service that serves the path.
    A schema name two services use for different schemas is prefixed with the service's
    name (``InventoryKpisOut``) in both.
    """
    contents: dict[str, dict[str, str]] = {}
    for service, doc in documents.items():
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            contents.setdefault(name, {})[service] = json.dumps(schema, sort_keys=True)
    clashing = {name for name, by in contents.items() if len(set(by.values())) > 1}

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    schemes: dict[str, Any] = {}
    operation_ids: dict[str, str] = {}
    for service, doc in documents.items():
        prefix = service.capitalize()
        renames = {name: prefix + name for name in clashing}
        doc = _rename_refs(doc, renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        schemes.update(doc.get("components", {}).get("securitySchemes", {}))
        for path, item in doc.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            if path in paths:
                raise ValueError(f"{path} is served by two services")
            for op in item.values():
                op_id = op.get("operationId", "")
                if op_id in operation_ids:
                    raise ValueError(
                        f"operation id {op_id} is used by {operation_ids[op_id]} and {service}"
                    )
                operation_ids[op_id] = service
                op["tags"] = [service, *[t for t in op.get("tags", []) if t != service]]
            paths[path] = {**item, "x-ecomops-service": service}
    first = next(iter(documents.values()), {})
    return {
        "openapi": first.get("openapi", "3.1.0"),
        "info": {
            "title": "ecomops",
            "version": version,
            "description": "Every ecomops service's REST API in one document. Each path is "
            "served by the service its `x-ecomops-service` names (and tags); the per-service "
            "documents carry the probes (`/healthz`, `/readyz`).",
        },
        "tags": [{"name": s, "description": f"the {s} service"} for s in documents],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": schemes},
    }


def write_documents(output: Path, names: Iterable[str]) -> list[Path]:
    """``<service>.json`` for each service and ``ecomops.json`` combining them, in ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    documents = {name: service_document(name) for name in names}
    written = []
    for name, doc in documents.items():
        path = output / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    version = next(iter(documents.values()), {}).get("info", {}).get("version", "0")
    combined = output / "ecomops.json"
    combined.write_text(
        json.dumps(combine(documents, version), indent=2, ensure_ascii=False) + "\n"
    )
    written.append(combined)
    return written
