"""Fixtures: the real PostgreSQL and Kafka, the service started once per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message

from ecomops.inventory.v1 import events_pb2 as inv
from ecomops.order.v1 import events_pb2 as orders
from ecomops_platform.events import cloudevent_headers, make_producer
from ecomops_platform.migrations import upgrade_async
from ecomops_platform.runtime import Service
from ecomops_platform.settings import CommonSettings
from ecomops_platform.timestamps import to_timestamp
from recommendation_service.bootstrap import create_service
from recommendation_service.settings import RecommendationSettings


class Publisher:
    """Produces events as the other services' outbox relays would."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    async def send(self, topic: str, key: str, message: Message, source: str) -> None:
        headers = cloudevent_headers(
            event_id=str(uuid.uuid4()),
            event_type=message.DESCRIPTOR.full_name,
            source=f"ecomops/{source}",
            time=datetime.now(UTC),
            traceparent=None,
        )
        await self.producer.send_and_wait(
            topic,
            value=message.SerializeToString(),
            key=key.encode(),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )

    async def sku(
        self, sku: str, title: str, category: str, *, status: str = "active", available: int = 10
    ) -> None:
        now = to_timestamp(datetime.now(UTC))
        await self.send(
            "ecomops.inventory.v1",
            sku,
            inv.SkuUpserted(sku=sku, title=title, category=category, status=status, updated_at=now),
            "inventory",
        )
        await self.stock(sku, available)

    async def stock(self, sku: str, available: int) -> None:
        await self.send(
            "ecomops.inventory.v1",
            sku,
            inv.StockLevelChanged(
                sku=sku,
                available=available,
                on_hand=max(available, 0),
                occurred_at=to_timestamp(datetime.now(UTC)),
            ),
            "inventory",
        )

    async def paid(
        self, customer: str, skus: list[str], *, total: int = 5000, order_id: str | None = None
    ) -> str:
        order_id = order_id or f"o-{uuid.uuid4().hex[:12]}"
        lines = [
            orders.OrderLine(sku=s, quantity=1, unit_price_minor=total // len(skus)) for s in skus
        ]
        now = to_timestamp(datetime.now(UTC))
        await self.send(
            "ecomops.order.v1",
            order_id,
            orders.OrderPlaced(
                order_id=order_id,
                customer_id=customer,
                currency="EUR",
                lines=lines,
                total_minor=total,
                placed_at=now,
            ),
            "order",
        )
        await self.send(
            "ecomops.order.v1",
            order_id,
            orders.OrderPaid(
                order_id=order_id,
                customer_id=customer,
                currency="EUR",
                total_minor=total,
                lines=lines,
                paid_at=now,
            ),
            "order",
        )
        return order_id

    async def cancel(self, customer: str, order_id: str, *, was_paid: bool = True) -> None:
        await self.send(
            "ecomops.order.v1",
            order_id,
            orders.OrderCancelled(
                order_id=order_id,
                customer_id=customer,
                reason="customer",
                was_paid=was_paid,
                cancelled_at=to_timestamp(datetime.now(UTC)),
            ),
            "order",
        )


@pytest.fixture(scope="session")
async def rec_db(stack_env: None) -> str:
    url = os.environ["RECOMMENDATION_DATABASE_URL"]
    await upgrade_async("recommendation", url)
    return url


@pytest.fixture(scope="session")
async def rec_service(rec_db: str) -> AsyncIterator[Service]:
    settings = RecommendationSettings(
        database_url=rec_db, http_port=0, grpc_port=0, max_batch=20, anonymous_rate_per_minute=1000
    )
    service = create_service(settings, CommonSettings())
    async with service.running():
        yield service


@pytest.fixture(scope="session")
async def client(rec_service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{rec_service.http_port}", timeout=10
    ) as c:
        yield c


@pytest.fixture(scope="session")
async def publisher(stack_env: None) -> AsyncIterator[Publisher]:
    producer = make_producer(CommonSettings(), "recommendation-tests")
    await producer.start()
    try:
        yield Publisher(producer)
    finally:
        await producer.stop()
