"""Fixtures shared by the proof suites (journeys, fault, security): one subprocess stack per
session (``tests/harness.py``), tokens, HTTP and gRPC helpers, and a Kafka topic reader.

Each suite's ``conftest.py`` imports this module; the stack is started once, on first use, and
stopped when the session finishes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import harness
import httpx
import pytest

from ecomops_platform.testing import token


@pytest.fixture(scope="session")
def stack(stack_env: None) -> harness.Stack:
    return harness.shared_stack()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    harness.stop_shared_stack()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def auth(subject: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(subject, role)}"}


def ops() -> dict[str, str]:
    return auth("ops-proof", "ops")


def customer(customer_id: str) -> dict[str, str]:
    return auth(customer_id, "customer")


def idem() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(subject: str = "proof-user", role: str | None = "ops", **over: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": subject,
        "iss": os.environ.get("ECOMOPS_JWT_ISSUER", "ecomops"),
        "aud": os.environ.get("ECOMOPS_JWT_AUDIENCE", "ecomops"),
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    if role is not None:
        body["role"] = role
    body.update(over)
    return body


def signed(payload: dict[str, Any], secret: str | None = None) -> str:
    import jwt

    return jwt.encode(payload, secret or os.environ["ECOMOPS_JWT_SECRET"], algorithm="HS256")


def bad_tokens() -> dict[str, tuple[str | None, int]]:
    """Name → (Authorization header value or None, expected REST status)."""
    now = int(time.time())
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims()) + "."
    return {
        "missing": (None, 401),
        "not-bearer": ("Basic b3BzOm9wcw==", 401),
        "malformed": ("Bearer not.a.jwt", 401),
        "expired": ("Bearer " + signed(claims(iat=now - 7200, exp=now - 3600)), 401),
        "wrong-signature": ("Bearer " + signed(claims(), "another-secret-" + "x" * 40), 401),
        "alg-none": ("Bearer " + unsigned, 401),
        "wrong-audience": ("Bearer " + signed(claims(aud="someone-else")), 401),
        "wrong-issuer": ("Bearer " + signed(claims(iss="evil")), 401),
        "no-role": ("Bearer " + signed(claims(role=None)), 403),
        "unknown-role": ("Bearer " + signed(claims(role="admin")), 403),
    }


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


# --- gRPC ------------------------------------------------------------------------------------
def grpc_service_name(service: str) -> str:
    return f"ecomops.{service}.v1.{service.capitalize()}Service"


def grpc_methods(service: str) -> list[str]:
    import importlib

    module = importlib.import_module(f"ecomops.{service}.v1.{service}_service_pb2")
    desc = module.DESCRIPTOR.services_by_name[f"{service.capitalize()}Service"]
    return [m.name for m in desc.methods]


async def raw_unary(
    target: str, method: str, payload: bytes, metadata: list[tuple[str, str]] | None
) -> tuple[grpc.StatusCode, bytes | None]:
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(method)
        try:
            reply = await call(payload, metadata=metadata or None, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), None
        return grpc.StatusCode.OK, reply


# --- Kafka -----------------------------------------------------------------------------------
async def read_topic(
    topic: str, *, keys: set[str] | None = None, timeout: float = 30.0
) -> list[Any]:
    """Every decodable event on ``topic`` from the beginning to the current end (optionally only
    the given keys), as platform ``Envelope`` objects."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from ecomops_platform.events import decode_event, kafka_client_options
    from ecomops_platform.settings import CommonSettings

    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_client_options(CommonSettings()),
    )
    await consumer.start()
    out: list[Any] = []
    try:
        partitions = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(topic, p) for p in partitions.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        deadline = asyncio.get_running_loop().time() + timeout
        while remaining:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout}s")
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                for msg in messages:
                    if msg.offset >= ends[tp] - 1:
                        remaining.discard(tp)
                    key = msg.key.decode() if msg.key else None
                    if keys is not None and key not in keys:
                        continue
                    try:
                        out.append(
                            decode_event(
                                topic=msg.topic,
                                partition=msg.partition,
                                offset=msg.offset,
                                key=msg.key,
                                value=msg.value,
                                raw_headers=msg.headers,
                            )
                        )
                    except Exception:
                        continue
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


async def wait_until(
    check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.2
) -> Any:
    from ecomops_platform.testing import eventually

    return await eventually(check, timeout=timeout, interval=interval)


# --- OpenAPI ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    operation_id: str
    has_body: bool
    body_ref: str | None

    def concrete_path(self, fill: str = "proof-missing-0") -> str:
        return re.sub(r"\{[^}]+\}", fill, self.path)

    @property
    def label(self) -> str:
        return f"{self.service} {self.method.upper()} {self.path}"


async def load_openapi(client: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    resp = await client.get(f"{base_url}/openapi.json")
    resp.raise_for_status()
    doc: dict[str, Any] = resp.json()
    return doc


def operations(service: str, doc: dict[str, Any]) -> list[Operation]:
    out: list[Operation] = []
    for path, item in sorted(doc.get("paths", {}).items()):
        if not path.startswith("/v1/"):
            continue
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            ref = None
            if body is not None:
                schema = body.get("schema", {})
                ref = schema.get("$ref")
            out.append(
                Operation(
                    service=service,
                    method=method,
                    path=path,
                    operation_id=op.get("operationId", ""),
                    has_body=body is not None,
                    body_ref=ref,
                )
            )
    return out


ROLES_TO_TRY = ("ops", "service", "customer", "partner")


async def request_as_allowed_role(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Send with the first role the operation does not refuse with 403 (ops first)."""
    headers = dict(kwargs.pop("headers", {}) or {})
    resp: httpx.Response | None = None
    for role in ROLES_TO_TRY:
        resp = await client.request(
            method, url, headers={**headers, **auth(f"proof-{role}", role)}, **kwargs
        )
        if resp.status_code != 403:
            return resp
    assert resp is not None
    return resp
