"""Idempotency-Key and JWT handling on REST and gRPC, through a running service."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import grpc
import httpx
import jwt
import pytest

from ecomops_testing import ops, token, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(probe_service):
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{probe_service.http_port}", timeout=10
    ) as c:
        yield c


async def test_same_key_and_body_replays_the_stored_response(client) -> None:
    headers = {**ops(unique("ops")), "Idempotency-Key": uuid.uuid4().hex}
    first = await client.post("/v1/notes", json={"text": "a", "amount": 1}, headers=headers)
    second = await client.post("/v1/notes", json={"text": "a", "amount": 1}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    fetched = await client.get(f"/v1/notes/{first.json()['id']}", headers=headers)
    assert fetched.status_code == 200


async def test_same_key_with_another_body_is_refused(client) -> None:
    headers = {**ops(unique("ops")), "Idempotency-Key": uuid.uuid4().hex}
    assert (
        await client.post("/v1/notes", json={"text": "a", "amount": 1}, headers=headers)
    ).status_code == 201
    resp = await client.post("/v1/notes", json={"text": "b", "amount": 1}, headers=headers)
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["type"].endswith("/idempotency-key-reused")


async def test_concurrent_duplicate_gets_409_and_only_one_effect(client) -> None:
    headers = {**ops(unique("ops")), "Idempotency-Key": uuid.uuid4().hex}
    slow = client.post("/v1/notes?slow=1.5", json={"text": "c", "amount": 1}, headers=headers)
    task = asyncio.create_task(slow)
    await asyncio.sleep(0.4)
    dup = await client.post("/v1/notes?slow=1.5", json={"text": "c", "amount": 1}, headers=headers)
    first = await task
    assert first.status_code == 201
    assert dup.status_code == 409
    assert dup.json()["type"].endswith("/request-in-progress")
    replay = await client.post("/v1/notes", json={"text": "c", "amount": 1}, headers=headers)
    assert replay.json()["id"] == first.json()["id"]


async def test_missing_key_is_400(client) -> None:
    resp = await client.post(
        "/v1/notes", json={"text": "a", "amount": 1}, headers=ops(unique("ops"))
    )
    assert resp.status_code == 400
    assert resp.json()["type"].endswith("/idempotency-key-missing")


async def test_keys_are_scoped_per_caller(client) -> None:
    key = uuid.uuid4().hex
    a = await client.post(
        "/v1/notes",
        json={"text": "a", "amount": 1},
        headers={**ops(unique("ops")), "Idempotency-Key": key},
    )
    b = await client.post(
        "/v1/notes",
        json={"text": "a", "amount": 1},
        headers={**ops(unique("ops")), "Idempotency-Key": key},
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_validation_errors_are_problem_documents(client) -> None:
    headers = {**ops(unique("ops")), "Idempotency-Key": uuid.uuid4().hex}
    resp = await client.post(
        "/v1/notes", json={"text": "a", "amount": "lots", "extra": 1}, headers=headers
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["type"].endswith("/validation-error")
    locations = {tuple(e["location"]) for e in body["errors"]}
    assert ("body", "amount") in locations and ("body", "extra") in locations


async def test_body_over_the_limit_is_413(client) -> None:
    headers = {**ops(unique("ops")), "Idempotency-Key": uuid.uuid4().hex}
    resp = await client.post("/v1/notes", content=b"x" * (2 * 1024 * 1024), headers=headers)
    assert resp.status_code == 413
    assert resp.json()["status"] == 413


def _forged_tokens() -> dict[str, tuple[str, int]]:
    secret = os.environ["ECOMOPS_JWT_SECRET"]
    now = int(time.time())
    base = {
        "sub": "ops-x",
        "role": "ops",
        "iss": "ecomops",
        "aud": "ecomops",
        "iat": now,
        "exp": now + 600,
    }
    return {
        "expired": (
            jwt.encode({**base, "iat": now - 700, "exp": now - 60}, secret, algorithm="HS256"),
            401,
        ),
        "bad signature": (
            jwt.encode(base, "another-secret-of-sufficient-length!!", algorithm="HS256"),
            401,
        ),
        "alg none": (jwt.encode(base, None, algorithm="none"), 401),
        "wrong audience": (
            jwt.encode({**base, "aud": "someone-else"}, secret, algorithm="HS256"),
            401,
        ),
        "wrong issuer": (jwt.encode({**base, "iss": "evil"}, secret, algorithm="HS256"), 401),
        "no role": (
            jwt.encode({k: v for k, v in base.items() if k != "role"}, secret, algorithm="HS256"),
            403,
        ),
        "role not allowed": (token("cust-1", "customer"), 403),
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "bad signature",
        "alg none",
        "wrong audience",
        "wrong issuer",
        "no role",
        "role not allowed",
    ],
)
async def test_rest_refuses_bad_tokens(client, case: str) -> None:
    tok, status = _forged_tokens()[case]
    resp = await client.get("/v1/notes/x", headers={"Authorization": f"Bearer {tok}"})
    assert resp.status_code == status, resp.text
    assert resp.json()["status"] == status


async def test_rest_without_token_is_401(client) -> None:
    resp = await client.get("/v1/notes/x")
    assert resp.status_code == 401
    assert resp.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("expired", grpc.StatusCode.UNAUTHENTICATED),
        ("bad signature", grpc.StatusCode.UNAUTHENTICATED),
        ("alg none", grpc.StatusCode.UNAUTHENTICATED),
        ("wrong audience", grpc.StatusCode.UNAUTHENTICATED),
        ("no role", grpc.StatusCode.PERMISSION_DENIED),
        ("role not allowed", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_grpc_refuses_bad_tokens(probe_service, case: str, code: grpc.StatusCode) -> None:
    tok, _ = _forged_tokens()[case]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{probe_service.grpc_port}") as channel:
        echo = channel.unary_unary("/ecomops.test.Probe/Echo")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await echo(b"hi", metadata=(("authorization", f"Bearer {tok}"),), timeout=5)
        assert err.value.code() == code
        good = await echo(
            b"hi", metadata=(("authorization", f"Bearer {token('ops-1', 'ops')}"),), timeout=5
        )
        assert good == b"hi"
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await echo(b"hi", timeout=5)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_grpc_health_and_reflection_answer_without_a_token(probe_service) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{probe_service.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        async def serving() -> None:
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING

        from ecomops_testing import eventually

        await eventually(serving, timeout=15)
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = set()
        async for r in responses:
            names |= {s.name for s in r.list_services_response.service}
        assert "ecomops.test.Probe" in names and "grpc.health.v1.Health" in names


async def test_health_ready_and_metrics(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    report = ready.json()
    assert ready.status_code == 200 and report["checks"] == {"database": True, "kafka": True}
    assert report["status"] == "ready" and report["degraded"] == []
    assert report["outbox_oldest_unpublished_age_seconds"] is not None
    await client.get("/v1/notes/x", headers=ops(unique("ops")))
    text = (await client.get("/metrics")).text
    assert (
        'ecomops_http_requests_total{method="GET",route="/v1/notes/{note_id}",service="probe",status="404"}'
        in text
    )


async def test_trace_context_flows_from_http_into_the_event_headers(client, probe_service) -> None:
    import sqlalchemy as sa

    from ecomops_platform.db import outbox_table

    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    resp = await client.post(
        "/v1/notes",
        json={"text": "traced", "amount": 1},
        headers={
            **ops(unique("ops")),
            "Idempotency-Key": uuid.uuid4().hex,
            "traceparent": traceparent,
        },
    )
    assert resp.status_code == 201
    async with probe_service.db.sessions() as session:
        headers = (
            await session.execute(
                sa.select(outbox_table.c.headers).where(outbox_table.c.key == resp.json()["id"])
            )
        ).scalar_one()
    assert headers["traceparent"].split("-")[1] == trace_id


async def test_nul_characters_are_refused_with_422(client) -> None:
    headers = {**ops(unique("ops")), "Idempotency-Key": uuid.uuid4().hex}
    body = await client.post("/v1/notes", json={"text": "a\u0000b", "amount": 1}, headers=headers)
    assert body.status_code == 422
    path = await client.get("/v1/notes/a%00b", headers=headers)
    assert path.status_code == 422


async def test_chunked_body_over_the_limit_is_413(client) -> None:
    headers = {**ops(unique("ops")), "Idempotency-Key": uuid.uuid4().hex}

    async def chunks():
        for _ in range(40):
            yield b"x" * 65536

    resp = await client.post("/v1/notes", content=chunks(), headers=headers)
    assert resp.status_code == 413
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_nul_in_a_grpc_string_is_invalid_argument(probe_service) -> None:
    from ecomops.common.v1 import common_pb2

    async with grpc.aio.insecure_channel(f"127.0.0.1:{probe_service.grpc_port}") as channel:
        echo = channel.unary_unary("/ecomops.test.Probe/EchoMoney")
        ok = common_pb2.Money(amount_minor=1, currency="EUR").SerializeToString()
        meta = (("authorization", f"Bearer {token('ops-1', 'ops')}"),)
        assert await echo(ok, metadata=meta, timeout=5) == ok
        bad = common_pb2.Money(amount_minor=1, currency="E\x00R").SerializeToString()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await echo(
                bad, metadata=(("authorization", f"Bearer {token('ops-1', 'ops')}"),), timeout=5
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
