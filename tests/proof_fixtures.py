"""Fixtures shared by the proof suites (journeys, fault, security): one subprocess stack per
session (``tests/harness.py``), HTTP and gRPC helpers; tokens and the Kafka reader are
ecomops_testing's.

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

from ecomops.inventory.v1 import events_pb2 as _inventory_events  # noqa: F401 - registers types
from ecomops.order.v1 import events_pb2 as _order_events  # noqa: F401
from ecomops.pricing.v1 import events_pb2 as _pricing_events  # noqa: F401
from ecomops.recommendation.v1 import events_pb2 as _recommendation_events  # noqa: F401
from ecomops.risk.v1 import events_pb2 as _risk_events  # noqa: F401
from ecomops_testing import bearer, read_topic
from ecomops_testing import customer as customer
from ecomops_testing import idempotency_key as idem


@pytest.fixture(scope="session")
def stack(stack_env: None) -> harness.Stack:
    return harness.shared_stack()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    harness.stop_shared_stack()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


auth = bearer
__all__ = ["auth", "customer", "idem", "read_topic"]


def ops() -> dict[str, str]:
    return bearer("ops-proof", "ops")


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


async def wait_until(
    check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.2
) -> Any:
    from ecomops_testing import eventually

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


# --- the shop: seeding the catalogue and buying through the public APIs ------------------------
ADDRESS = {
    "name": "Proof Buyer",
    "line1": "1 Test Street",
    "city": "Lyon",
    "postal_code": "69001",
    "country": "FR",
}


def _ip_of(customer_id: str) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_OID, customer_id).bytes
    return f"10.{digest[0]}.{digest[1]}.{digest[2] or 1}"


class Shop:
    """Storefront and back-office calls used by the journeys, the fault tests and the bench."""

    def __init__(self, client: httpx.AsyncClient, stack: harness.Stack) -> None:
        self.client = client
        self.stack = stack
        self.warehouse = "WH-PROOF"

    def url(self, service: str, path: str) -> str:
        return self.stack.url(service) + path

    async def _ok(self, resp: httpx.Response, *codes: int) -> Any:
        assert resp.status_code in (codes or (200, 201)), (
            f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:500]}"
        )
        return resp.json() if resp.content else None

    async def ensure_warehouse(self) -> None:
        resp = await self.client.put(
            self.url("inventory", f"/v1/warehouses/{self.warehouse}"),
            json={"name": "Proof warehouse", "region": "eu"},
            headers={**ops(), **idem()},
        )
        await self._ok(resp, 200, 201)

    async def seed_sku(
        self,
        sku: str,
        *,
        units: int,
        price_minor: int = 2000,
        cost_minor: int = 800,
        category: str = "proof",
    ) -> None:
        """A SKU in the registry, ``units`` received in the proof warehouse, and a EUR price."""
        await self.ensure_warehouse()
        resp = await self.client.put(
            self.url("inventory", f"/v1/skus/{sku}"),
            json={"title": f"Proof {sku}", "category": category, "status": "active"},
            headers={**ops(), **idem()},
        )
        await self._ok(resp, 200, 201)
        if units:
            await self.receive(sku, units)
        await self.set_price(sku, price_minor, cost_minor)

    async def set_price(self, sku: str, price_minor: int, cost_minor: int) -> httpx.Response:
        """PUT the price; pricing learns SKUs from inventory's events, so wait for it to know."""
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            resp = await self.client.put(
                self.url("pricing", f"/v1/prices/{sku}"),
                json={
                    "currency": "EUR",
                    "list_price_minor": price_minor,
                    "unit_cost_minor": cost_minor,
                },
                headers={**ops(), **idem()},
            )
            unknown = resp.status_code == 422 and resp.json()["type"].endswith("/unknown-sku")
            if not unknown:
                break
            if asyncio.get_running_loop().time() > deadline:
                report = await event_flow_report(self.stack, "inventory", "pricing")
                raise AssertionError(f"pricing never learned SKU {sku} from inventory\n{report}")
            await asyncio.sleep(0.2)
        await self._ok(resp, 200, 201)
        return resp

    async def receive(self, sku: str, units: int) -> Any:
        resp = await self.client.post(
            self.url("inventory", "/v1/stock/adjustments"),
            json={
                "sku": sku,
                "warehouse": self.warehouse,
                "delta": units,
                "reason": "receipt",
                "reference": new_id("po"),
            },
            headers={**ops(), **idem()},
        )
        return await self._ok(resp, 200, 201)

    async def stock(self, sku: str) -> dict[str, Any]:
        resp = await self.client.get(self.url("inventory", f"/v1/stock/{sku}"), headers=ops())
        result: dict[str, Any] = await self._ok(resp, 200)
        return result

    async def place_order(
        self,
        customer_id: str,
        lines: list[tuple[str, int]],
        *,
        key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
    ) -> httpx.Response:
        body = {
            "currency": "EUR",
            "lines": [{"sku": s, "quantity": q} for s, q in lines],
            "shipping_address": ADDRESS,
            # One address per buyer: risk's velocity rules would (rightly) stop one address
            # placing hundreds of orders.
            "client": {"ip": _ip_of(customer_id), "device_id": f"dev-{customer_id}"},
        }
        return await self.client.post(
            (base_url or self.stack.url("order")) + "/v1/orders",
            json=body,
            headers={**customer(customer_id), "Idempotency-Key": key or uuid.uuid4().hex},
            timeout=timeout,
        )

    async def pay(self, customer_id: str, order_id: str, *, key: str | None = None) -> Any:
        resp = await self.client.post(
            self.url("order", f"/v1/orders/{order_id}/payments"),
            json={"payment_token": "tok_ok_" + uuid.uuid4().hex[:8]},
            headers={**customer(customer_id), "Idempotency-Key": key or uuid.uuid4().hex},
        )
        return await self._ok(resp, 201, 200)

    async def order(self, order_id: str, headers: dict[str, str] | None = None) -> Any:
        resp = await self.client.get(
            self.url("order", f"/v1/orders/{order_id}"), headers=headers or ops()
        )
        return await self._ok(resp, 200)


@pytest.fixture
async def shop(http: httpx.AsyncClient, stack: harness.Stack) -> Shop:
    stack.require("order", "inventory", "pricing", "risk")
    return Shop(http, stack)


# --- database invariants ------------------------------------------------------------------------
def pg_dsn(service: str) -> str:
    return os.environ[f"{service.upper()}_DATABASE_URL"].replace(
        "postgresql+asyncpg://", "postgresql://"
    )


async def stock_invariants(skus: list[str], *, sweep_slack: float = 8.0) -> list[str]:
    """Ledger, stock and reservation consistency for ``skus``; the list of violations."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn("inventory"))
    problems: list[str] = []
    try:
        rows = await conn.fetch(
            """
            SELECT s.sku, s.warehouse, s.on_hand, s.reserved,
                   COALESCE((SELECT sum(delta) FROM stock_ledger l
                             WHERE l.sku = s.sku AND l.warehouse = s.warehouse), 0) AS ledger_sum,
                   COALESCE((SELECT sum(a.quantity) FROM reservation_allocations a
                             JOIN reservations r USING (reservation_id)
                             WHERE a.sku = s.sku AND a.warehouse = s.warehouse
                               AND r.status = 'held'), 0) AS held
            FROM stock s WHERE s.sku = ANY($1::text[])
            """,
            skus,
        )
        for r in rows:
            where = f"{r['sku']}@{r['warehouse']}"
            if r["ledger_sum"] != r["on_hand"]:
                problems.append(
                    f"{where}: ledger sums to {r['ledger_sum']}, on_hand {r['on_hand']}"
                )
            if not 0 <= r["reserved"] <= r["on_hand"]:
                problems.append(f"{where}: reserved {r['reserved']} outside 0..{r['on_hand']}")
            if r["held"] != r["reserved"]:
                problems.append(f"{where}: reserved {r['reserved']}, held allocations {r['held']}")
        stale = await conn.fetch(
            """
            SELECT DISTINCT r.reservation_id, r.expires_at FROM reservations r
            JOIN reservation_allocations a USING (reservation_id)
            WHERE a.sku = ANY($1::text[]) AND r.status = 'held'
              AND r.expires_at < now() - make_interval(secs => $2)
            """,
            skus,
            sweep_slack,
        )
        for r in stale:
            problems.append(f"hold {r['reservation_id']} outlived its expiry {r['expires_at']}")
    finally:
        await conn.close()
    return problems


async def order_events_check(order_ids: set[str], *, timeout: float = 60.0) -> dict[str, Any]:
    """Every accepted order has exactly one OrderPlaced (one distinct ce_id) on Kafka.

    Delivery is at-least-once (the relay may resend a batch after a crash between the broker's
    ack and its commit), so the same ce_id twice is fine; a missing event, or two different ce_ids
    for one order, is not.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            events = await read_topic("ecomops.order.v1", keys=order_ids)
        except Exception:  # the broker may be restarting (fault tests); read again
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1.0)
            continue
        ids: dict[str, set[str]] = {o: set() for o in order_ids}
        copies = 0
        for e in events:
            if e.event_type == "ecomops.order.v1.OrderPlaced" and e.key in ids:
                copies += 1
                ids[e.key].add(e.event_id)
        missing = sorted(o for o, s in ids.items() if not s)
        doubled = sorted(o for o, s in ids.items() if len(s) > 1)
        if (not missing and not doubled) or asyncio.get_running_loop().time() > deadline:
            return {
                "missing": missing,
                "doubled": doubled,
                "redelivered": copies - sum(len(s) for s in ids.values()),
            }
        await asyncio.sleep(1.0)


async def orders_of(customers: list[str]) -> dict[str, str]:
    """order id → status, from the order database, for these customers."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn("order"))
    try:
        rows = await conn.fetch(
            "SELECT id, status FROM orders WHERE customer_id = ANY($1::text[])", customers
        )
    finally:
        await conn.close()
    return {r["id"]: r["status"] for r in rows}


async def event_flow_report(stack: harness.Stack, producer: str, consumer: str) -> str:
    """Why events of ``producer`` do not reach ``consumer``: the producer's outbox backlog,
    the consumer's newest inbox row, every transaction older than 5 s or waiting for a lock in
    either database, and both services' recent warnings. A test that waited in vain prints it,
    so that a failure seen once in CI explains itself."""
    import asyncpg

    lines: list[str] = []
    try:
        conn = await asyncpg.connect(pg_dsn(producer))
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, min(created_at) AS oldest, max(published_at) AS last"
                " FROM outbox WHERE published_at IS NULL OR published_at > now() - interval '5 min'"
            )
            unpublished = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            lines.append(
                f"{producer} outbox: {unpublished} unpublished, oldest recent row {row['oldest']},"
                f" last published {row['last']}"
            )
        finally:
            await conn.close()
        conn = await asyncpg.connect(pg_dsn(consumer))
        try:
            newest = await conn.fetchrow(
                "SELECT event_type, processed_at FROM inbox ORDER BY processed_at DESC LIMIT 1"
            )
            lines.append(f"{consumer} inbox: newest {dict(newest) if newest else None}")
            rows = await conn.fetch(
                "SELECT datname, pid, application_name, state, wait_event_type, wait_event,"
                " now() - xact_start AS age, left(query, 160) AS query FROM pg_stat_activity"
                " WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()"
                " AND (now() - xact_start > interval '5 seconds' OR wait_event_type = 'Lock')",
                [pg_dsn(producer).rsplit("/", 1)[-1], pg_dsn(consumer).rsplit("/", 1)[-1]],
            )
            lines += [f"long or waiting transaction: {dict(r)}" for r in rows]
        finally:
            await conn.close()
    except Exception as exc:  # a report, not a check
        lines.append(f"(database part of the report failed: {exc!r})")
    for name in (producer, consumer):
        if name in stack.procs:
            noisy = ('"logger": "aiokafka', '"ecomops.access"', '"level": "info"')
            recent = [
                line[:400]
                for line in stack.tail(name, 4000).splitlines()
                if not any(n in line for n in noisy)
            ]
            lines.append(f"--- {name}: last warnings\n" + "\n".join(recent[-25:]))
    return "\n".join(lines)
