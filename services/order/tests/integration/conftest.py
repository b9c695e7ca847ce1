"""The order service in-process against the real PostgreSQL and Kafka, with fake ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_testing import customer as customer_headers
from ecomops_testing import ops as ops_headers
from ecomops_testing import unique
from order_service.bootstrap import create_service
from order_service.settings import OrderSettings


@pytest.fixture(scope="session")
async def order_db(stack_env: None) -> str:
    url = os.environ["ORDER_DATABASE_URL"]
    await upgrade_async("order", url)
    return url


@pytest.fixture(scope="module")
async def order_service(order_db: str, fake_world: Any) -> AsyncIterator[Service]:
    # Module scope: the service leaves the ecomops-order consumer group when the module ends,
    # so it never competes with the end-to-end suite's order service for RiskReviewResolved.
    settings = OrderSettings(database_url=order_db, http_port=0, grpc_port=0, job_interval=0.2)
    service = create_service(settings, ports=fake_world.ports())
    async with service.running():
        yield service


@pytest.fixture(autouse=True)
def _heal(fake_world: Any) -> Any:
    yield
    fake_world.heal()


@pytest.fixture
async def api(order_service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{order_service.http_port}", timeout=15
    ) as client:
        yield client


@pytest.fixture
def customer() -> Callable[..., tuple[str, dict[str, str]]]:
    """A fresh customer id (optionally tagged: 'review', 'reject') and its headers."""

    def make(tag: str = "c") -> tuple[str, dict[str, str]]:
        subject = unique(f"cust-{tag}")
        return subject, customer_headers(subject)

    return make


@pytest.fixture
def ops() -> dict[str, str]:
    return ops_headers()


@pytest.fixture
def place(api: httpx.AsyncClient, address: dict[str, Any]) -> Callable[..., Any]:
    async def go(
        headers: dict[str, str],
        lines: list[dict[str, Any]] | None = None,
        *,
        key: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body = {
            "currency": "EUR",
            "lines": lines or [{"sku": unique("sku"), "quantity": 2}],
            "shipping_address": address,
            **extra,
        }
        return await api.post(
            "/v1/orders", json=body, headers={**headers, "Idempotency-Key": key or unique("k")}
        )

    return go
