"""Hostile bodies on every service: over the size limit → 413 (announced or streamed), deeply
nested JSON → 4xx, unknown fields → 422 naming the field, on every operation that takes a body.
"""

from __future__ import annotations

import asyncio
import os

import harness
import pytest
from proof_fixtures import idem, load_openapi, operations, ops, request_as_allowed_role

pytestmark = pytest.mark.integration

SERVICES = harness.implemented()


def _limit() -> int:
    return int(os.environ.get("ECOMOPS_MAX_BODY_BYTES", "1048576"))


async def _body_ops(http, stack, service):
    found = [
        o for o in operations(service, await load_openapi(http, stack.url(service))) if o.has_body
    ]
    assert found, f"{service} has no operation taking a JSON body"
    return found


@pytest.mark.parametrize("service", SERVICES)
async def test_body_over_the_limit_is_413(stack, http, service: str) -> None:
    op = (await _body_ops(http, stack, service))[0]
    url = stack.url(service) + op.concrete_path()
    big = b'{"x":"' + b"a" * (_limit() + 10) + b'"}'
    headers = {**ops(), **idem(), "Content-Type": "application/json"}
    announced = await http.request(op.method.upper(), url, content=big, headers=headers)
    assert announced.status_code == 413, announced.text[:300]
    assert announced.headers["content-type"].startswith("application/problem+json")

    async def stream():
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    streamed = await http.request(op.method.upper(), url, content=stream(), headers=headers)
    assert streamed.status_code == 413, streamed.text[:300]


@pytest.mark.parametrize("service", SERVICES)
async def test_streamed_body_over_the_limit_is_413(stack, http, service: str) -> None:
    op = (await _body_ops(http, stack, service))[0]
    big = b'{"x":"' + b"a" * (_limit() + 10) + b'"}'

    async def stream():
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    resp = await http.request(
        op.method.upper(),
        stack.url(service) + op.concrete_path(),
        content=stream(),
        headers={**ops(), **idem(), "Content-Type": "application/json"},
    )
    assert resp.status_code == 413, resp.text[:300]


@pytest.mark.parametrize("service", SERVICES)
async def test_deeply_nested_json_is_a_client_error(stack, http, service: str) -> None:
    failures = []
    for op in await _body_ops(http, stack, service):
        url = stack.url(service) + op.concrete_path()
        for body in ("[" * 50_000 + "]" * 50_000, '{"a":' * 20_000 + "1" + "}" * 20_000):
            resp = await http.request(
                op.method.upper(),
                url,
                content=body.encode(),
                headers={**ops(), **idem(), "Content-Type": "application/json"},
            )
            if not 400 <= resp.status_code < 500:
                failures.append(f"{op.label}: {resp.status_code}")
    assert not failures, failures


@pytest.mark.parametrize("service", SERVICES)
async def test_unknown_fields_are_refused(stack, http, service: str) -> None:
    failures = []

    async def check(op) -> None:
        url = stack.url(service) + op.concrete_path()
        resp = await request_as_allowed_role(
            http, op.method.upper(), url, json={"proof_unknown_field": 1}, headers=idem()
        )
        if resp.status_code != 422:
            failures.append(f"{op.label}: {resp.status_code} {resp.text[:200]}")
            return
        errors = resp.json().get("errors", [])
        if not any(
            e.get("type") == "extra_forbidden" and "proof_unknown_field" in e.get("location", [])
            for e in errors
        ):
            failures.append(f"{op.label}: 422 without naming the unknown field: {errors[:3]}")

    await asyncio.gather(*(check(op) for op in await _body_ops(http, stack, service)))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", [s for s in SERVICES if s == "recommendation"])
async def test_huge_arrays_are_refused(stack, http, service: str) -> None:
    from datetime import UTC, datetime

    event = {
        "type": "view",
        "sku": "PROOF-SKU",
        "customer_id": "proof-huge",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    resp = await http.post(
        stack.url(service) + "/v1/behavior-events",
        json={"events": [event] * 5000},
        headers={**ops(), **idem()},
    )
    assert 400 <= resp.status_code < 500, resp.text[:300]
