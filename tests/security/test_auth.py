"""Tokens on every REST operation and every gRPC method of every running service.

Expired, wrong signature, ``alg: none``, wrong audience or issuer, malformed or missing →
401 / UNAUTHENTICATED; a valid token without a known role → 403 / PERMISSION_DENIED. The
operations come from each service's own OpenAPI document and protobuf descriptor, so a new
endpoint is probed without editing this file. Operations that answer without any token must be
listed in ``PUBLIC_OPERATIONS`` with the reason they are public.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import grpc
import harness
import pytest
from proof_fixtures import (
    Operation,
    bad_tokens,
    grpc_methods,
    grpc_service_name,
    load_openapi,
    operations,
    raw_unary,
)

pytestmark = pytest.mark.integration

SERVICES = harness.implemented()

# (service, METHOD, path) answering without a token, on purpose: the reason, and a valid body
# with which a *bad* token must still be refused (never downgraded to anonymous).
PUBLIC_OPERATIONS: dict[tuple[str, str, str], tuple[str, Any]] = {
    ("recommendation", "POST", "/v1/behavior-events"): (
        "anonymous storefront beacons (session id only, rate limited per address)",
        lambda: {
            "events": [
                {
                    "type": "view",
                    "sku": "PROOF-SKU",
                    "session_id": "proof-session",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
            ]
        },
    ),
}


async def _probe(http, url: str, op: Operation, header: str | None) -> int:
    headers = {"Idempotency-Key": "proof-auth-probe"}
    if header is not None:
        headers["Authorization"] = header
    kwargs = {"json": {}} if op.has_body else {}
    resp = await http.request(
        op.method.upper(), url + op.concrete_path(), headers=headers, **kwargs
    )
    return resp.status_code


@pytest.mark.parametrize("service", SERVICES)
async def test_every_rest_operation_refuses_bad_tokens(stack, http, service: str) -> None:
    url = stack.url(service)
    ops = operations(service, await load_openapi(http, url))
    assert ops, f"{service} publishes no /v1 operation in its OpenAPI document"
    sem = asyncio.Semaphore(16)
    failures: list[str] = []

    async def check(op: Operation, name: str, header: str | None, expected: int) -> None:
        if (service, op.method.upper(), op.path) in PUBLIC_OPERATIONS:
            return
        async with sem:
            got = await _probe(http, url, op, header)
        if got != expected:
            failures.append(f"{op.label} with {name} token: {got}, expected {expected}")

    await asyncio.gather(
        *(
            check(op, name, header, expected)
            for op in ops
            for name, (header, expected) in bad_tokens().items()
        )
    )
    assert not failures, "\n".join(sorted(failures))


@pytest.mark.parametrize("service", SERVICES)
async def test_public_operations_still_refuse_bad_tokens(stack, http, service: str) -> None:
    public = {k: v for k, v in PUBLIC_OPERATIONS.items() if k[0] == service}
    failures: list[str] = []
    for (_, method, path), (_, body) in public.items():
        for name, (header, expected) in bad_tokens().items():
            headers = {} if header is None else {"Authorization": header}
            resp = await http.request(
                method, stack.url(service) + path, json=body(), headers=headers
            )
            ok = resp.status_code < 400 if header is None else resp.status_code == expected
            if not ok:
                failures.append(f"{method} {path} with {name} token: {resp.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", SERVICES)
async def test_every_grpc_method_refuses_bad_tokens(stack, service: str) -> None:
    target = stack.grpc_target(service)
    full = grpc_service_name(service)
    methods = grpc_methods(service)
    expected_code = {401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED}
    failures: list[str] = []
    sem = asyncio.Semaphore(16)

    async def check(method: str, name: str, header: str | None, status: int) -> None:
        metadata = [("authorization", header)] if header is not None else None
        async with sem:
            code, _ = await raw_unary(target, f"/{full}/{method}", b"", metadata)
        if code != expected_code[status]:
            failures.append(f"{full}/{method} with {name} token: {code.name}")

    await asyncio.gather(
        *(
            check(method, name, header, status)
            for method in methods
            for name, (header, status) in bad_tokens().items()
        )
    )
    assert not failures, "\n".join(sorted(failures))


@pytest.mark.parametrize("service", SERVICES)
async def test_health_and_reflection_answer_without_a_token(stack, service: str) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(stack.grpc_target(service)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service=grpc_service_name(service)), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests():
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        names: list[str] = []
        async for response in stub.ServerReflectionInfo(requests(), timeout=5):
            names = [s.name for s in response.list_services_response.service]
        assert grpc_service_name(service) in names
        assert "grpc.health.v1.Health" in names
