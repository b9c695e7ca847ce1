"""The OpenAPI documents of every service, and one combined document, for ``ecomops openapi``
(front ends and generated clients). Rendering a document connects to nothing.

Every service's generated document is refined to say what the service enforces
(:func:`refine_openapi`, installed by the app factory)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from . import registry
from .problems import PROBLEM_MEDIA_TYPE, problem_example
from .rest_locations import locations_of

_REF_PREFIX = "#/components/schemas/"


def service_app(name: str) -> FastAPI:
    """The REST app of the service ``name``, built offline (not started).

    Settings an app does not depend on for its routes (database URL, token secret) are given
    placeholders when the environment lacks them; nothing is connected to.
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
        app: FastAPI = info.spec.create().build_app()
        return app
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)


def service_document(name: str) -> dict[str, Any]:
    """The OpenAPI document the service ``name`` serves at ``/openapi.json`` (rendered offline,
    see :func:`service_app`)."""
    doc: dict[str, Any] = service_app(name).openapi()
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


# --- refining the generated document --------------------------------------------------------------

BEARER_SCHEME = "bearerAuth"

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_HEADER_DOCS: dict[str, dict[str, Any]] = {
    "Idempotent-Replayed": {
        "description": "`true` when this answer is the stored answer to an earlier request "
        "with the same Idempotency-Key (nothing was done again); absent otherwise.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Location": {
        "description": "The path of the created resource.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    },
}


def service_examples(service: str) -> dict[str, dict[str, Any]]:
    """The examples of a service's request and response bodies, by operation id: ``EXAMPLES``
    of its ``<package>.entrypoints.examples`` module ({} without one)."""
    import importlib

    from . import registry

    info = registry.SERVICES.get(service)
    if info is None:
        return {}
    try:
        module = importlib.import_module(f"{info.package}.entrypoints.examples")
    except ModuleNotFoundError:
        return {}
    examples: dict[str, dict[str, Any]] = getattr(module, "EXAMPLES", {})
    return examples


def install_openapi(app: FastAPI, service: str) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            refine_openapi(generate(), service_examples(service))
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def refine_openapi(
    doc: dict[str, Any], examples: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Make the generated document say what the service enforces (in place; returned), with
    the ``examples`` of request and response bodies by operation id."""
    locations = locations_of(doc)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                _refine_operation(path, op, locations.get((method.upper(), path)))
                _add_examples(op, (examples or {}).get(op.get("operationId", ""), {}))
    problem = doc.setdefault("components", {}).setdefault("schemas", {}).get("Problem")
    if problem is not None:
        problem["description"] = (
            "An RFC 9457 problem document. `type` names the problem (stable), `detail` says "
            "what happened; validation problems list each field in `errors`; other members "
            "carry structured details (e.g. `shortages`)."
        )
        problem["example"] = problem_example(422, "/v1/orders")
    return doc


def _add_examples(op: dict[str, Any], examples: Mapping[str, Any]) -> None:
    if "request" in examples:
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            body["example"] = examples["request"]
    if "response" in examples:
        for code, response in sorted(op.get("responses", {}).items()):
            media = response.get("content", {}).get("application/json")
            if code.startswith("2") and media is not None:
                media["example"] = examples["response"]
                break


def _refine_operation(path: str, op: dict[str, Any], location: str | None) -> None:
    secured = bool(op.get("security"))
    has_body = "requestBody" in op
    headers = {p.get("name") for p in op.get("parameters", []) if p.get("in") == "header"}
    idempotent = "Idempotency-Key" in headers
    responses: dict[str, Any] = op.setdefault("responses", {})
    if not path.startswith("/v1/"):
        # Probes: no token, no body, no rate limit (only the screen's 400/422 remain);
        # /readyz answers 503 with its report.
        ok = responses.get("200", {}).get("content")
        for code in [c for c in responses if c.isdigit() and int(c) >= 400]:
            if code == "503" and path == "/readyz" and ok:
                responses[code]["content"] = ok
            elif code not in ("400", "422"):
                responses.pop(code)
    elif not secured:
        # A /v1/ operation open to anonymous callers still verifies a token when one is sent
        # (e.g. behaviour events from signed-in customers): the token is optional.
        op["security"] = [{}, {BEARER_SCHEME: []}]
    if not has_body:
        responses.pop("413", None)
    if path.startswith("/v1/"):
        responses.setdefault("500", {"description": "Internal error (logged)"})
    for code, response in responses.items():
        status = int(code) if code.isdigit() else 0
        if status >= 400 and not (path == "/readyz" and status == 503):
            response["content"] = {
                PROBLEM_MEDIA_TYPE: {
                    "schema": _PROBLEM_REF,
                    "example": problem_example(status, path, idempotent=idempotent),
                }
            }
            if status in (429, 503):
                response.setdefault("headers", {})["Retry-After"] = _HEADER_DOCS["Retry-After"]
            if status == 409 and idempotent:
                response["description"] = (
                    "Conflict with the current state, or a request with this Idempotency-Key "
                    "is still in progress (retry later)"
                )
        elif 200 <= status < 300:
            if idempotent:
                replay = _HEADER_DOCS["Idempotent-Replayed"]
                response.setdefault("headers", {})["Idempotent-Replayed"] = replay
            if status == 201:
                doc = dict(_HEADER_DOCS["Location"])
                if location:
                    doc["description"] = f"The path of the created resource ({location})."
                response.setdefault("headers", {})["Location"] = doc
