"""Every service's OpenAPI document as ``ecomops openapi`` writes it: a token on every /v1/
operation, Location on every 201, the examples valid against their schemas, and the combined
document whole (every path, every reference resolvable)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ecomops_platform import registry
from ecomops_platform.openapi import service_app, service_examples, write_documents

SERVICES = tuple(registry.SERVICES)
METHODS = {"get", "post", "put", "patch", "delete"}
# 201 answers without a readable resource to point at (no GET of a single label exists).
NO_LOCATION = {("risk", "/v1/labels")}


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("openapi")
    written = write_documents(out, SERVICES)
    assert sorted(p.name for p in written) == sorted(
        [f"{s}.json" for s in SERVICES] + ["ecomops.json"]
    )
    return {p.stem: json.loads(p.read_text()) for p in written}


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    refs = Registry().with_resource("urn:doc", resource)
    ref = schema["$ref"].replace("#", "urn:doc#", 1) if "$ref" in schema else None
    return Draft202012Validator({"$ref": ref} if ref else schema, registry=refs)


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_says_how_to_authenticate_and_where_the_created_thing_is(
    documents: dict[str, dict[str, Any]], service: str
) -> None:
    doc = documents[service]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, method, op in _operations(doc):
        if not path.startswith("/v1/"):
            assert "security" not in op, path
            continue
        assert {"bearerAuth": []} in op["security"], (path, method)
        created = op["responses"].get("201")
        if created is not None and (service, path) not in NO_LOCATION:
            assert "(/v1/" in created["headers"]["Location"]["description"], (path, method)
        for code, response in op["responses"].items():
            if int(code) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (path, code)


@pytest.mark.parametrize("service", SERVICES)
def test_the_examples_are_valid_and_shown(
    documents: dict[str, dict[str, Any]], service: str
) -> None:
    doc = documents[service]
    examples = service_examples(service)
    assert examples, f"{service} has no examples of its main operations"
    by_id = {op["operationId"]: op for _, _, op in _operations(doc)}
    assert set(examples) <= set(by_id), set(examples) - set(by_id)
    for op_id, example in examples.items():
        op = by_id[op_id]
        if "request" in example:
            media = op["requestBody"]["content"]["application/json"]
            assert media["example"] == example["request"]
            errors = list(_validator(doc, media["schema"]).iter_errors(example["request"]))
            assert not errors, (op_id, [e.message for e in errors])
        if "response" in example:
            (media,) = [
                r["content"]["application/json"]
                for c, r in op["responses"].items()
                if "example" in r.get("content", {}).get("application/json", {})
            ]
            errors = list(_validator(doc, media["schema"]).iter_errors(example["response"]))
            assert not errors, (op_id, [e.message for e in errors])
    # Every problem example is a valid problem document.
    problem = doc["components"]["schemas"]["Problem"]
    for _, _, op in _operations(doc):
        for code, response in op["responses"].items():
            media = response.get("content", {}).get("application/problem+json")
            if media:
                assert not list(_validator(doc, problem).iter_errors(media["example"])), code


def test_the_combined_document_holds_every_operation(
    documents: dict[str, dict[str, Any]],
) -> None:
    combined = documents["ecomops"]
    expected = {
        (path, method)
        for service in SERVICES
        for path, method, _ in _operations(documents[service])
        if path.startswith("/v1/")
    }
    assert {(p, m) for p, m, _ in _operations(combined)} == expected
    refs = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(combined)
    schemas = combined["components"]["schemas"]
    missing = {r for r in refs if r.rsplit("/", 1)[-1] not in schemas}
    assert not missing, missing
    # Names two services use for different schemas are told apart.
    assert {"InventoryKpisOut", "RiskKpisOut"} <= set(schemas)
    for path, item in combined["paths"].items():
        assert item["x-ecomops-service"] in SERVICES, path


def test_the_command_writes_the_documents(tmp_path: Path) -> None:
    from ecomops_platform.cli import main

    assert main(["openapi", "--output", str(tmp_path), "pricing"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ecomops.json", "pricing.json"]


def _sync_calls(dependant: Any, route: str) -> list[str]:
    """Every handler and dependency of a route FastAPI would run in its thread pool."""
    found: list[str] = []
    call = dependant.call
    if call is not None:
        target = call if inspect.isroutine(call) else getattr(call, "__call__", call)  # noqa: B004
        if not inspect.iscoroutinefunction(target):
            found.append(f"{route}: {getattr(call, '__qualname__', repr(call))}")
    for sub in dependant.dependencies:
        found.extend(_sync_calls(sub, route))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_no_route_hands_its_request_to_a_worker_thread(service: str) -> None:
    """A plain ``def`` handler or dependency runs in FastAPI's thread pool: a hand-off to a
    worker thread and back, with the GIL contended, on every request (it showed as 15% of the
    order service's samples under checkout load when the Idempotency-Key check was one)."""
    from fastapi.routing import iter_route_contexts

    routes = [
        (f"{sorted(r.methods)} {r.path}", r.dependant)
        for r in iter_route_contexts(service_app(service).routes)
        if getattr(r, "dependant", None) is not None
    ]
    assert len(routes) > 3, "the service's routes were not found"
    assert [s for name, dependant in routes for s in _sync_calls(dependant, name)] == []
