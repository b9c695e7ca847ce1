"""The inventory service, migrated and running once per test session against the real stack."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_platform.testing import bearer, unique
from inventory_service.bootstrap import create_service
from inventory_service.settings import InventorySettings

OPS = bearer("ops-1", "ops")
SVC = bearer("order", "service")


@pytest.fixture(scope="session")
async def inventory_db(stack_env: None) -> str:
    url = os.environ["INVENTORY_DATABASE_URL"]
    await upgrade_async("inventory", url)
    return url


@pytest.fixture(scope="session")
async def service(inventory_db: str) -> AsyncIterator[Service]:
    settings = InventorySettings(
        database_url=inventory_db,
        http_port=0,
        grpc_port=0,
        expiry_sweep_interval_seconds=0.5,
        reservation_max_ttl_seconds=3600,
        db_pool_size=20,
        db_max_overflow=40,
    )
    svc = create_service(settings)
    async with svc.running():
        yield svc


@pytest.fixture(scope="session")
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}", timeout=30) as c:
        yield c


@pytest.fixture
def make_sku(client: httpx.AsyncClient) -> Callable[..., Any]:
    async def make(
        *, stock: dict[str, int] | None = None, status: str = "active", **extra: Any
    ) -> str:
        sku = unique("sku")
        r = await client.put(
            f"/v1/skus/{sku}",
            json={"title": f"Title {sku}", "category": "cat-test", "status": status, **extra},
            headers=OPS,
        )
        assert r.status_code == 201, r.text
        for wh, qty in (stock or {}).items():
            r = await client.post(
                "/v1/stock/adjustments",
                json={"sku": sku, "warehouse": wh, "delta": qty, "reason": "receipt"},
                headers={**OPS, "Idempotency-Key": unique("k")},
            )
            assert r.status_code == 201, r.text
        return sku

    return make


@pytest.fixture
def make_warehouse(client: httpx.AsyncClient) -> Callable[..., Any]:
    async def make(*, region: str | None = None, priority: int = 100) -> str:
        code = unique("wh")
        r = await client.put(
            f"/v1/warehouses/{code}",
            json={"name": f"Warehouse {code}", "region": region, "priority": priority},
            headers=OPS,
        )
        assert r.status_code == 201, r.text
        return code

    return make
