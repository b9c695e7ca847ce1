"""The inventory service, migrated and running once per test session against the real stack."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_testing import FreshHeaders, ops, service_caller, unique
from inventory_service.bootstrap import create_service
from inventory_service.settings import InventorySettings

OPS = FreshHeaders(ops)
SVC = FreshHeaders(lambda: service_caller("order"))


@pytest.fixture(scope="session")
async def inventory_db(stack_env: None) -> str:
    url = os.environ["INVENTORY_DATABASE_URL"]
    await upgrade_async("inventory", url)
    return url


async def _start_group_at_end(group_id: str, topic: str) -> None:
    """Commit the group's offsets at the topic's end: the test service reads only new events
    (not the shared broker's history)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from ecomops_platform.events import kafka_client_options
    from ecomops_platform.settings import CommonSettings

    consumer = AIOKafkaConsumer(
        group_id=group_id, enable_auto_commit=False, **kafka_client_options(CommonSettings())
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()


@pytest.fixture(scope="session")
async def service(inventory_db: str) -> AsyncIterator[Service]:
    await _start_group_at_end("ecomops-inventory-itest", "ecomops.order.v1")
    settings = InventorySettings(
        database_url=inventory_db,
        http_port=0,
        grpc_port=0,
        expiry_sweep_interval_seconds=0.5,
        reservation_max_ttl_seconds=3600,
        db_pool_size=20,
        db_max_overflow=40,
        # Not the shared "ecomops-inventory" group: other inventory instances on the same
        # broker (e.g. the e2e suite, with its own database) must not take our partitions.
        consumer_name="itest",
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
