"""Cross-service end-to-end fixtures: the REAL inventory, pricing, risk and order services,
in-process in one event loop, each with its own database (``ecomops_<service>_e2e``) on the
test stack's PostgreSQL, and Kafka.

Consumers run under their own group ids (``ecomops-<service>-e2e``), moved to the end of
their topics before start, so that these services never compete with another copy of the same
service (a developer's integration tests on the shared stack) for events, and never replay
history.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_testing import bearer, ensure_database, eventually, skip_to_end, unique

SERVICES = ("inventory", "pricing", "risk", "order")
WAREHOUSE = "e2e-wh"


def e2e_url(service: str, suffix: str = "") -> str:
    base = os.environ["ORDER_DATABASE_URL"].rsplit("/", 1)[0]
    return f"{base}/ecomops_{service}_e2e{suffix}"


def isolate_consumers(service: Service, tag: str = "e2e") -> None:
    for sub in service._subscriptions:
        sub.name = tag if sub.name == "main" else f"{tag}-{sub.name}"


@dataclass
class Stack:
    services: dict[str, Service]
    clients: dict[str, httpx.AsyncClient]

    @property
    def order(self) -> Service:
        return self.services["order"]


@contextlib.asynccontextmanager
async def running_stack(suffix: str = "") -> AsyncIterator[Stack]:
    """The four services on databases ``ecomops_<service>_e2e<suffix>`` with consumer groups
    ``ecomops-<service>-e2e<suffix>``: a module that needs its own rule set passes a suffix
    and shares nothing with the other modules."""
    from inventory_service.bootstrap import create_service as inventory_service
    from inventory_service.settings import InventorySettings
    from order_service.bootstrap import create_service as order_service
    from order_service.settings import OrderSettings
    from pricing_service.bootstrap import create_service as pricing_service
    from pricing_service.settings import PricingSettings
    from risk_service.bootstrap import create_service as risk_service
    from risk_service.settings import RiskSettings

    tag = f"e2e{suffix}"
    for name in SERVICES:
        await ensure_database(e2e_url(name, suffix))
        await upgrade_async(name, e2e_url(name, suffix))
    common = dict(http_port=0, grpc_port=0)
    # The topics are shared with whatever else runs on the stack: other suites' events that
    # these services cannot apply go to the DLQ after 2 attempts instead of blocking a
    # partition for seconds.
    shared = CommonSettings(consumer_max_attempts=2)
    built: dict[str, Service] = {
        "inventory": inventory_service(
            InventorySettings(database_url=e2e_url("inventory", suffix), **common), shared
        ),
        "pricing": pricing_service(
            PricingSettings(database_url=e2e_url("pricing", suffix), **common), shared
        ),
        "risk": risk_service(RiskSettings(database_url=e2e_url("risk", suffix), **common), shared),
    }
    async with contextlib.AsyncExitStack() as exits:
        for name, service in built.items():
            isolate_consumers(service, tag)
            for sub in service._subscriptions:
                await skip_to_end(f"ecomops-{name}-{sub.name}", sub.topics)
            await exits.enter_async_context(service.running())
        order = order_service(
            OrderSettings(
                database_url=e2e_url("order", suffix),
                inventory_target=f"127.0.0.1:{built['inventory'].grpc_port}",
                pricing_target=f"127.0.0.1:{built['pricing'].grpc_port}",
                risk_target=f"127.0.0.1:{built['risk'].grpc_port}",
                job_interval=0.3,
                dependency_timeout=5.0,
                **common,
            ),
            shared,
        )
        isolate_consumers(order, tag)
        for sub in order._subscriptions:
            await skip_to_end(f"ecomops-order-{sub.name}", sub.topics)
        await exits.enter_async_context(order.running())
        built["order"] = order
        clients = {}
        for name, service in built.items():
            clients[name] = await exits.enter_async_context(
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}", timeout=30)
            )
        yield Stack(built, clients)


@pytest.fixture(scope="module")
async def stack(stack_env: None) -> AsyncIterator[Stack]:
    async with running_stack() as st:
        await create_warehouse(st)
        await _seed_rules(st)
        yield st


async def create_warehouse(st: Stack) -> None:
    ops = bearer("e2e-ops", "ops")
    r = await st.clients["inventory"].put(
        f"/v1/warehouses/{WAREHOUSE}", json={"name": "E2E warehouse"}, headers=ops
    )
    assert r.status_code in (200, 201), r.text


async def _seed_rules(st: Stack) -> None:
    """Risk rules for the journeys: a blocklisted customer is rejected; a device used more
    than once in an hour goes to review; everything else is approved."""
    ops = bearer("e2e-ops", "ops")
    rules = {
        "review_threshold": "0.3",
        "reject_threshold": "0.8",
        "model_weight": "0",
        "rules": [
            {
                "code": "velocity_device",
                "type": "velocity_device",
                "weight": "0.5",
                "params": {"window_seconds": 3600, "max_count": 1},
            },
            {"code": "blocklist", "type": "blocklist", "weight": "1"},
        ],
    }
    resp = await st.clients["risk"].put("/v1/rules", json=rules, headers=ops)
    assert resp.status_code == 200, resp.text


@pytest.fixture
def ops() -> dict[str, str]:
    return bearer("e2e-ops", "ops")


@pytest.fixture
def seed(stack: Stack, ops: dict[str, str]) -> Callable[..., Any]:
    """A new active SKU with stock and a price (list 2000, cost 500 minor units, EUR)."""

    async def make(stock: int = 10, price: int = 2000) -> str:
        sku = unique("e2e-sku")
        inv, pr = stack.clients["inventory"], stack.clients["pricing"]
        r = await inv.put(
            f"/v1/skus/{sku}",
            json={"title": sku, "category": "e2e", "status": "active"},
            headers=ops,
        )
        assert r.status_code in (200, 201), r.text
        if stock:
            r = await inv.post(
                "/v1/stock/adjustments",
                json={"sku": sku, "warehouse": WAREHOUSE, "delta": stock, "reason": "receipt"},
                headers={**ops, "Idempotency-Key": unique("adj")},
            )
            assert r.status_code == 201, r.text

        async def priced() -> None:
            # Pricing learns SKUs from inventory's SkuUpserted events: wait for it.
            r = await pr.put(
                f"/v1/prices/{sku}",
                json={"currency": "EUR", "list_price_minor": price, "unit_cost_minor": 500},
                headers=ops,
            )
            assert r.status_code in (200, 201), r.text

        await eventually(priced, timeout=90, interval=0.2)
        return sku

    return make


@pytest.fixture
def coupon(stack: Stack, ops: dict[str, str]) -> Callable[..., Any]:
    async def make(sku: str, *, percent: str = "0.10", usage_limit: int = 100) -> str:
        code = unique("E2E").replace("-", "_").upper()
        now = datetime.now(UTC)
        r = await stack.clients["pricing"].post(
            "/v1/promotions",
            json={
                "name": code,
                "kind": "percent",
                "value": percent,
                "scope": {"skus": [sku]},
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(),
                "coupon_code": code,
                "usage_limit": usage_limit,
                "currency": "EUR",
            },
            headers={**ops, "Idempotency-Key": unique("promo")},
        )
        assert r.status_code == 201, r.text
        return code

    return make


ADDRESS = {
    "name": "Grace Hopper",
    "line1": "1 Compiler Street",
    "city": "Arlington",
    "postal_code": "22201",
    "country": "US",
}


@pytest.fixture
def checkout(stack: Stack) -> Callable[..., Any]:
    async def go(
        headers: dict[str, str],
        lines: list[dict[str, Any]],
        *,
        key: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body = {"currency": "EUR", "lines": lines, "shipping_address": ADDRESS, **extra}
        return await stack.clients["order"].post(
            "/v1/orders", json=body, headers={**headers, "Idempotency-Key": key or unique("k")}
        )

    return go


@pytest.fixture
def customer() -> Callable[[], tuple[str, dict[str, str]]]:
    def make() -> tuple[str, dict[str, str]]:
        cid = unique("e2e-cust")
        return cid, bearer(cid, "customer")

    return make
